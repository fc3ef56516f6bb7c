"""A fake NCMEC CyberTipline ISPWS for tests and demos: submit -> upload -> fileinfo ->
finish/retract, HTTP Basic, XML checked against the report schema's required shape, and
injectable failures (HTTP 500s, hangs, a connection dropped mid-upload)."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from hashmatch.reports.model import CLASSIFICATIONS, INCIDENT_TYPES

USER, PASSWORD = "esp-user", "esp-pass"


@dataclass
class FakeReport:
    xml: ET.Element
    files: dict[str, str] = field(default_factory=dict)  # file id -> md5
    described: set[str] = field(default_factory=set)
    finished: bool = False
    retracted: bool = False


class FakeCyberTip:
    def __init__(self) -> None:
        self.reports: dict[str, FakeReport] = {}
        self.fail_next: dict[str, int] = {}  # path -> how many 500s to answer first
        self.drop_next: dict[str, int] = {}  # path -> close the connection mid-request
        self.hold: dict[str, threading.Event] = {}  # path -> wait for this before answering
        self.hold_from: dict[str, int] = {}  # path -> hold only its Nth request and later
        self.arrived: dict[str, threading.Event] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                fake.handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and left: expected in these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ispws"

    def close(self) -> None:
        for event in self.hold.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()

    def finished(self) -> list[FakeReport]:
        return [r for r in self.reports.values() if r.finished]

    # -- protocol ----------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.removeprefix("/ispws")
        with self.lock:
            self.requests.append(path)
            nth = self.requests.count(path)
        if path in self.hold and nth >= self.hold_from.get(path, 1):
            self.arrived.setdefault(path, threading.Event()).set()
            self.hold[path].wait(30)
        else:
            self.arrived.setdefault(path, threading.Event()).set()
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            h.send_response(401)
            h.end_headers()
            return
        if self.drop_next.get(path, 0) > 0:
            self.drop_next[path] -= 1
            h.rfile.read(min(int(h.headers.get("Content-Length") or 0), 100))
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if self.fail_next.get(path, 0) > 0:
            self.fail_next[path] -= 1
            h.send_response(500)
            h.end_headers()
            return
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            answer = self.route(path, body, h.headers.get("Content-Type", ""))
        data = answer.encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def route(self, path: str, body: bytes, content_type: str) -> str:
        try:
            if path == "/submit":
                return self.submit(body)
            if path == "/upload":
                return self.upload(body, content_type)
            if path == "/fileinfo":
                return self.fileinfo(body)
            if path in ("/finish", "/retract"):
                return self.close_report(path, parse_qs(body.decode())["id"][0])
        except (ET.ParseError, KeyError, ValueError) as exc:
            return _response(4100, f"Validation failed: {exc}")
        return _response(4000, "Invalid request")

    def submit(self, body: bytes) -> str:
        root = ET.fromstring(body)
        incident = root.find("incidentSummary")
        if root.tag != "report" or incident is None:
            return _response(4100, "report/incidentSummary required")
        if incident.findtext("incidentType") not in INCIDENT_TYPES:
            return _response(4100, "incidentType")
        if not incident.findtext("incidentDateTime"):
            return _response(4100, "incidentDateTime")
        if not root.findtext("reporter/reportingPerson/email"):
            return _response(4100, "reporter email")
        report_id = str(len(self.reports) + 1000)
        self.reports[report_id] = FakeReport(root)
        return _response(0, "Success", reportId=report_id)

    def upload(self, body: bytes, content_type: str) -> str:
        msg = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        report = self.reports.get(str(parts["id"].get_content()).strip())
        if report is None or report.finished or report.retracted:
            return _response(5001, "Report does not exist")
        content = parts["file"].get_payload(decode=True)
        file_id = uuid.uuid4().hex
        report.files[file_id] = hashlib.md5(content).hexdigest()
        return _response(0, "Success", reportId="", fileId=file_id, hash=report.files[file_id])

    def fileinfo(self, body: bytes) -> str:
        root = ET.fromstring(body)
        report = self.reports.get(root.findtext("reportId") or "")
        file_id = root.findtext("fileId") or ""
        if root.tag != "fileDetails" or report is None or file_id not in report.files:
            return _response(5002, "File does not exist")
        if (root.findtext("industryClassification") or "") not in CLASSIFICATIONS:
            return _response(4100, "industryClassification")
        hashes = root.findall("originalFileHash")
        if not hashes or hashes[0].text != report.files[file_id]:
            return _response(4100, "originalFileHash")
        report.described.add(file_id)
        return _response(0, "Success")

    def close_report(self, path: str, report_id: str) -> str:
        report = self.reports.get(report_id)
        if report is None:
            return _response(5001, "Report does not exist")
        if report.finished:
            return _response(5102, "Report already finished")
        if report.retracted:
            return _response(5101, "Report already retracted")
        if path == "/finish":
            if set(report.files) != report.described:
                return _response(4100, "every file needs its fileinfo")
            report.finished = True
        else:
            report.retracted = True
        return _response(0, "Success", reportId=report_id)


def _response(code: int, description: str, **extra: str) -> str:
    root = ET.Element("reportResponse")
    ET.SubElement(root, "responseCode").text = str(code)
    ET.SubElement(root, "responseDescription").text = description
    for k, v in extra.items():
        ET.SubElement(root, k).text = v
    return ET.tostring(root, encoding="unicode")
