"""A CyberTipline ISPWS client: submit -> upload -> fileinfo -> finish (and retract).

XML as NCMEC's schema names it (report, incidentSummary, reporter, personOrUserReported,
fileDetails); HTTP Basic; the response XML's responseCode decides success.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from hashmatch.config import ReportsConfig
from hashmatch.errors import BadParameter
from hashmatch.reports.model import Report, ReportFile

ALREADY_FINISHED = 5102
ALREADY_RETRACTED = 5101


class DeliveryError(Exception):
    """A step failed. `retry` says whether trying again later can help."""

    def __init__(self, message: str, retry: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retry, self.code = retry, code


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # e.g. https://report.cybertip.org/ispws
    username: str
    password: str
    timeout_s: float = 30.0


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def report_xml(report: Report) -> bytes:
    root = ET.Element("report")
    summary = _sub(root, "incidentSummary")
    _sub(summary, "incidentType", report.incident_type)
    if report.platform:
        _sub(summary, "platform", report.platform)
    _sub(summary, "incidentDateTime", report.incident_time)
    reporter = _sub(root, "reporter")
    person = _sub(reporter, "reportingPerson")
    _sub(person, "firstName", report.reporter_first_name)
    _sub(person, "lastName", report.reporter_last_name)
    _sub(person, "email", report.reporter_email)
    if report.reportee_name or report.reportee_ip:
        reported = _sub(root, "personOrUserReported")
        if report.reportee_name:
            _sub(reported, "screenName", report.reportee_name)
        if report.reportee_ip:
            event = _sub(reported, "ipCaptureEvent")
            _sub(event, "ipAddress", report.reportee_ip)
            _sub(event, "eventName", "Upload")
    if report.additional_info:
        _sub(root, "additionalInfo", report.additional_info)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def file_details_xml(report_id: str, file_id: str, f: ReportFile, md5: str) -> bytes:
    root = ET.Element("fileDetails")
    _sub(root, "reportId", report_id)
    _sub(root, "fileId", file_id)
    _sub(root, "originalFileName", f.name)
    _sub(root, "fileViewedByEsp", str(f.viewed_by_esp).lower())
    _sub(root, "publiclyAvailable", str(f.publicly_available).lower())
    _sub(root, "fileRelevance", "Reported")
    if f.classification:
        _sub(root, "industryClassification", f.classification)
    h = _sub(root, "originalFileHash", md5)
    h.set("hashType", "MD5")
    if f.upload_ip:
        event = _sub(root, "ipCaptureEvent")
        _sub(event, "ipAddress", f.upload_ip)
        _sub(event, "eventName", "Upload")
        if f.upload_time:
            _sub(event, "dateTime", f.upload_time)
    if f.match_details:
        _sub(root, "additionalInfo", f.match_details)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


class CyberTipClient:
    """One HTTP client (connection pool) per endpoint; the outbox does the retrying, since
    each step's outcome must be committed before the next."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.base_url.rstrip("/"),
            auth=httpx.BasicAuth(endpoint.username, endpoint.password),
            timeout=endpoint.timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: bytes, content_type: str) -> ET.Element:
        try:
            resp = self._http.post(path, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{path}: {type(exc).__name__}: {exc}", retry=True) from None
        if resp.is_error:
            # 5xx and 429: the endpoint's trouble, worth retrying; other 4xx are ours.
            code = resp.status_code
            raise DeliveryError(f"{path}: HTTP {code}", code >= 500 or code == 429)
        answer = resp.content
        try:
            root = ET.fromstring(answer)
        except ET.ParseError:
            raise DeliveryError(f"{path}: unreadable response", retry=True) from None
        code = int(root.findtext("responseCode") or -1)
        if code != 0:
            desc = root.findtext("responseDescription") or ""
            raise DeliveryError(
                f"{path}: NCMEC code {code} {desc}",
                retry=code in (1000, 1100, 1110, 1111),
                code=code,
            )
        return root

    def submit(self, report: Report) -> str:
        root = self._post("/submit", report_xml(report), "text/xml; charset=utf-8")
        return root.findtext("reportId") or ""

    def upload(self, report_id: str, f: ReportFile) -> str:
        boundary = uuid.uuid4().hex
        name = f.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="id"\r\n\r\n{report_id}\r\n'
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + f.content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        root = self._post("/upload", body, f"multipart/form-data; boundary={boundary}")
        if (root.findtext("hash") or "").lower() != hashlib.md5(f.content).hexdigest():
            raise DeliveryError("/upload: the endpoint's MD5 differs from the file's", retry=True)
        return root.findtext("fileId") or ""

    def fileinfo(self, report_id: str, file_id: str, f: ReportFile, md5: str) -> None:
        """Describe an uploaded file: metadata only, so it can be sent after a restart."""
        xml = file_details_xml(report_id, file_id, f, md5)
        self._post("/fileinfo", xml, "text/xml; charset=utf-8")

    def _form(self, path: str, report_id: str) -> ET.Element:
        return self._post(path, f"id={report_id}".encode(), "application/x-www-form-urlencoded")

    def finish(self, report_id: str) -> None:
        try:
            self._form("/finish", report_id)
        except DeliveryError as exc:
            if exc.code != ALREADY_FINISHED:  # a retried finish that had landed: filed once
                raise

    def retract(self, report_id: str) -> None:
        try:
            self._form("/retract", report_id)
        except DeliveryError as exc:
            if exc.code not in (ALREADY_RETRACTED, 5001):
                raise


def client_factory(config: ReportsConfig) -> Callable[[bool], CyberTipClient]:
    """The endpoint per mode (test or not); credentials read once, from the environment."""
    clients: dict[bool, CyberTipClient] = {}
    if config.endpoint:
        password = os.environ.get(config.password_env, "")
        clients[False] = CyberTipClient(
            Endpoint(config.endpoint, config.username, password, config.timeout_s)
        )
    if config.test_endpoint:
        password = os.environ.get(config.test_password_env, "")
        clients[True] = CyberTipClient(
            Endpoint(config.test_endpoint, config.test_username, password, config.timeout_s)
        )

    def client_for(test: bool) -> CyberTipClient:
        if test not in clients:
            mode = "test_endpoint" if test else "endpoint"
            raise BadParameter(f"reporting is not configured: set [reports] {mode}")
        return clients[test]

    return client_for
