"""NCMEC's hash-sharing API (v2): its entries, read window by window, and feedback.

Facts of the wire (python-threatexchange, exchanges/clients/ncmec/hash_api.py with its
tests/data.py, and exchanges/impl/ncmec_api.py; NCMEC's own documentation is
<base>/v2/documentation): HTTP Basic auth. GET <base>/v2/entries?from=&to= (ISO 8601 UTC)
answers XML <queryResult> with <images> and <videos>, each holding <image>/<video> (member,
timestamp, id, classification, fingerprints) and <deletedImage>/<deletedVideo>; about 1,000
records a response, and <paging><next> is the path (relative to the base URL) of the next.
Feedback: GET /v2/feedback/<TYPE>/reasons; PUT /v2/entries/<member>/<entry>/<TYPE>/feedback
with <feedbackSubmission> holding <affirmative/> or <negative><reasonIds><guid>.

NCMEC does NOT return a window's entries in time order, so a checkpoint may only pass a
window [from, to) once all of its pages are read. Checkpoint (JSON):
  {"from": F}                                   windows before F are done
  {"from": F, "to": T, "next": L, "at": A}      inside [F, T): L is the next page's path,
                                                 given at A (Unix s)
A link older than LINK_TTL_S (NCMEC asks that paging links not be kept long; the reference
drops them after 12 hours) restarts its window: the re-read is idempotent, every record is
the entry's whole state. Windows end LAG_S before now, and the next starts at the previous
one's `to`, as in the reference (were both ends inclusive upstream, a record on an edge
would come twice: harmless). A fresh
window whose first response estimates more than max_window_records (from the next link's
start/max, as the reference does) is cut before anything of it is yielded, where that
response's timestamps put the share wanted; after small windows the span doubles.

An upstream entry is "<member id>/<entry id>" (the pair that feedback addresses); its
source is "<exchange>/<member id>" (ids are stable, names are not); its label is the
classification (A1, B2, ...).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import defusedxml.ElementTree as SafeET

from hashmatch.banks.model import MAX_TEXT, NewEntry, SignalType, Tombstone
from hashmatch.errors import BadParameter
from hashmatch.exchanges.http import Http, HttpSettings
from hashmatch.exchanges.model import (
    Credentials,
    Page,
    UpstreamError,
    UpstreamFeedback,
    Verdict,
    plausible_time,
    record_events,
    source_of,
)

API_VERSION = "v2"
# python-threatexchange's NCMECEnvironment, named as hashmatch's --environment takes them.
ENVIRONMENTS: dict[str, str] = {
    "industry": "https://report.cybertip.org/hashsharing",
    "industry-exploitative": "https://report.cybertip.org/exploitative-hashsharing",
    "ngo": "https://hashsharing.ncmec.org/npo",
    "exploitative": "https://hashsharing.ncmec.org/exploitative",
    "ngo-generative-ai": "https://hashsharing.ncmec.org/generative-ai-csam",
    "ngo-generative-ai-exploitative": "https://hashsharing.ncmec.org/generative-ai-exploitative",
    "law-enforcement": "https://lesp.ncmec.org/csam-hashsharing",
    "test-industry": "https://exttest.cybertip.org/hashsharing",
    "test-industry-exploitative": "https://exttest.cybertip.org/exploitative-hashsharing",
    "test-ngo": "https://hashsharing-test.ncmec.org/npo",
    "test-exploitative": "https://hashsharing-test.ncmec.org/exploitative",
    "test-ngo-generative-ai": "https://hashsharing-test.ncmec.org/generative-ai-csam",
    "test-ngo-generative-ai-exploitative": (
        "https://hashsharing-test.ncmec.org/generative-ai-exploitative"
    ),
    "test-law-enforcement": "https://betalesp.ncmec.org/csam-hashsharing",
}
CREDENTIALS: tuple[str, ...] = ("user", "password")

XMLNS = "https://hashsharing.ncmec.org/hashsharing/v2"
# <fingerprints> children hashmatch holds, and NCMEC's name of each for feedback. NCMEC has
# no SHA-256 (its types: MD5 SHA1 PDNA PDQ NETCLEAN VIDENTIFIER TMK_PDQF SSVH_*).
FINGERPRINTS: dict[str, SignalType] = {"pdq": SignalType.PDQ, "md5": SignalType.MD5}
FEEDBACK_TYPES: dict[SignalType, str] = {SignalType.PDQ: "PDQ", SignalType.MD5: "MD5"}
RECORD_TAGS = frozenset({"image", "video", "deletedImage", "deletedVideo"})
LAG_S = 60  # a window ends this long before now: entries still being written land after it
LINK_TTL_S = 12 * 3600
MAX_WINDOW_RECORDS = 100_000  # a window estimated larger is split (the reference: 400,000/4)
MAX_ID = 200  # characters of an entry id: the external id must stay within MAX_TEXT

_DEFAULT_HTTP = HttpSettings()


class _Malformed(Exception):
    """One upstream record that cannot be read: skipped and counted."""


@dataclass(frozen=True)
class _Cursor:
    start: int  # the current window's `from` (or the next window's, between windows)
    stop: int | None = None  # the current window's `to`, while one is being read
    next: str | None = None
    at: int = 0

    def to_json(self) -> str:
        if self.stop is None:
            return json.dumps({"from": self.start})
        return json.dumps({"from": self.start, "to": self.stop, "next": self.next, "at": self.at})


@dataclass(frozen=True)
class _Response:
    events: list[NewEntry | Tombstone]
    records: int  # upstream records in it, skipped ones included
    times: list[int]  # the timestamps of those read
    skipped: int  # malformed ones
    next: str | None

    @property
    def newest(self) -> int | None:
        return max(self.times, default=None)

    def estimate(self) -> int | None:
        """Records left in the window after this response and in it, guessed from the
        next link's start/max (the reference's estimated_entries_in_range)."""
        if self.next is None:
            return self.records
        query = parse_qs(urlsplit(self.next).query)
        try:
            return int(query["max"][0]) - int(query["start"][0]) + self.records
        except (KeyError, ValueError):
            return None


class NcmecClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: Credentials,
        settings: HttpSettings = _DEFAULT_HTTP,
        *,
        page_size: int | None = None,  # None: upstream's own (1,000)
        lag_s: int = LAG_S,
        max_window_records: int = MAX_WINDOW_RECORDS,
        negative_reason: str = "",  # a reason's guid or name for false positives
        link_ttl_s: int = LINK_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(credentials.values) != 2 or not all(credentials.values):
            raise BadParameter("ncmec takes two credentials: user, password")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.lag_s = lag_s
        self.max_window_records = max(1, max_window_records)
        self.negative_reason = negative_reason
        self.link_ttl_s = link_ttl_s
        self.skipped = 0
        self._clock = clock
        self._reasons: dict[str, dict[str, str]] = {}  # feedback type -> guid -> name
        user, password = credentials.values
        self._http = Http(settings, auth=(user, password))

    def __repr__(self) -> str:
        return f"NcmecClient({self.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def status(self) -> tuple[int, str]:
        """Who the credentials are: (member id, member name)."""
        root = self._get_xml(f"{self.base_url}/{API_VERSION}/status", None)
        member = _child(root, "member")
        member_id = _member_id(member) if member is not None else None
        if member is None or member_id is None:
            raise UpstreamError("ncmec: unreadable status", retry=True)
        return member_id, (member.text or "").strip()

    # -- fetch ------------------------------------------------------------------------------
    def fetch(self, checkpoint: str | None) -> Iterator[Page]:
        cursor = _load(checkpoint)
        end = int(self._clock()) - self.lag_s
        if cursor.stop is not None and (cursor.stop > end or not self._fresh(cursor)):
            cursor = _Cursor(cursor.start)  # read that window again from its beginning
        span = max(1, end - cursor.start)
        while cursor.stop is not None or cursor.start < end:
            start = cursor.start
            stop = cursor.stop if cursor.stop is not None else min(end, start + span)
            read, stop = yield from self._window(start, stop, cursor.next)
            # Grow slowly after small windows; keep a size that filled one.
            span = 2 * (stop - start) if read < self.max_window_records // 4 else stop - start
            cursor = _Cursor(stop)

    def _fresh(self, cursor: _Cursor) -> bool:
        return cursor.next is not None and self._clock() - cursor.at <= self.link_ttl_s

    def _window(
        self, start: int, stop: int, link: str | None
    ) -> Generator[Page, None, tuple[int, int]]:
        """The pages of [start, stop) from `link` (None: its first); a fresh window too big
        by its first response's estimate shrinks before anything of it is yielded.
        Returns (upstream records read, the window's stop as it ended)."""
        may_split = link is None
        read = probes = 0
        while True:
            response = self._entries(start, stop, link)
            if may_split and response.next is not None and stop - start > 1:
                estimate = response.estimate()
                if estimate is not None and estimate > self.max_window_records:
                    stop = start + self._shrunk(start, stop, estimate, response.times, probes)
                    probes += 1
                    continue  # this response's records come again in the smaller window
            may_split = False
            if response.next is not None and response.next == link:
                raise UpstreamError("ncmec: paging does not advance", retry=True)
            read += response.records
            self.skipped += response.skipped  # counted once used: a probe's come again
            link = response.next
            at = int(self._clock())
            after = _Cursor(start, stop, link, at) if link else _Cursor(stop)
            yield Page(response.events, after.to_json(), response.newest)
            if link is None:
                return read, stop

    def _shrunk(self, start: int, stop: int, estimate: int, times: list[int], probes: int) -> int:
        """A span to hold about half the most a window may: cut where the response (a
        sample of the window, upstream's order being no time order) puts that share. From
        the second cut of a window on, at most half the span: a biased sample still
        converges."""
        share = (self.max_window_records // 2 or 1) / estimate
        inside = sorted(t for t in times if start <= t < stop)
        if inside:
            cut = inside[min(len(inside) - 1, int(share * len(inside)))] + 1 - start
        else:  # no timestamps to go by: suppose entries evenly spread in time
            cut = int((stop - start) * share)
        most = stop - start - 1 if probes == 0 else (stop - start) // 2
        return max(1, min(most, cut))

    def _entries(self, start: int, stop: int, link: str | None) -> _Response:
        if link is None:
            params = [("from", _iso(start)), ("to", _iso(stop))]
            if self.page_size:
                params.append(("size", str(self.page_size)))
            root = self._get_xml(f"{self.base_url}/{API_VERSION}/entries", params)
        else:
            root = self._get_xml(self.base_url + link, None)
        if _local(root.tag) != "queryResult":
            raise UpstreamError("ncmec: entries: not a queryResult", retry=True)
        return self._response(root)

    def _response(self, root: ET.Element) -> _Response:
        events: list[NewEntry | Tombstone] = []
        records = 0
        times: list[int] = []
        skipped = 0
        for group in root:
            if _local(group.tag) not in ("images", "videos"):
                continue
            for item in group:
                records += 1
                try:
                    record, updated = self._record(item)
                except _Malformed:
                    skipped += 1
                    continue
                events.extend(record)
                times.append(updated)
        paging = _child(root, "paging")
        found = _child(paging, "next") if paging is not None else None
        link = (found.text or "").strip() if found is not None else ""
        return _Response(events, records, times, skipped, _checked_link(link) if link else None)

    def _record(self, item: ET.Element) -> tuple[list[NewEntry | Tombstone], int]:
        """An entry as it is now, and its timestamp."""
        tag = _local(item.tag)
        if tag not in RECORD_TAGS:
            raise _Malformed
        fields = {_local(c.tag): c for c in item}
        member = fields.get("member")
        member_id = _member_id(member) if member is not None else None
        entry_id = (fields["id"].text or "").strip() if "id" in fields else ""
        updated = _unix_time(fields["timestamp"].text) if "timestamp" in fields else None
        if member_id is None or not entry_id or len(entry_id) > MAX_ID or updated is None:
            raise _Malformed
        upstream_id = f"{member_id}/{entry_id}"
        source = source_of(self.name, str(member_id))
        if tag.startswith("deleted"):
            return record_events(upstream_id, (), label=None, source=source), updated
        found = fields.get("classification")
        label = (found.text or "").strip()[:MAX_TEXT] if found is not None else ""
        prints = fields.get("fingerprints")
        values = _fingerprints(prints) if prints is not None else []
        return record_events(upstream_id, values, label=label or None, source=source), updated

    # -- feedback ---------------------------------------------------------------------------
    def send_feedback(self, items: Sequence[UpstreamFeedback]) -> None:
        """Each verdict is a PUT on the entry's fingerprint of that type: affirmative for a
        true positive, negative (with a reason NCMEC lists) for a false positive. A PUT
        states the vote, so a batch sent again changes nothing. Items of no NCMEC entry
        or type (SHA-256) are passed over."""
        wanted: dict[tuple[str, str, str, Verdict], None] = {}
        for f in items:
            pair = _entry_of(f.upstream_id)
            if pair is not None and f.signal_type in FEEDBACK_TYPES:
                wanted[(*pair, FEEDBACK_TYPES[f.signal_type], f.verdict)] = None
        for member, entry, fp_type, verdict in wanted:
            self._http.request(
                "PUT",
                f"{self.base_url}/{API_VERSION}/entries/{member}/{quote(entry, safe='')}"
                f"/{fp_type}/feedback",
                content=self._submission(fp_type, verdict),
                headers={"Content-Type": "application/xml; charset=utf-8"},
            )

    def _submission(self, fp_type: str, verdict: Verdict) -> bytes:
        root = ET.Element("feedbackSubmission", {"xmlns": XMLNS})
        if verdict is Verdict.TRUE_POSITIVE:
            ET.SubElement(root, "affirmative")
        else:
            negative = ET.SubElement(root, "negative")
            ids = ET.SubElement(negative, "reasonIds")
            ET.SubElement(ids, "guid").text = self._reason(fp_type)
        body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return body

    def feedback_reasons(self, fp_type: str) -> dict[str, str]:
        """NCMEC's negative-feedback reasons for a fingerprint type: guid -> name."""
        if fp_type not in self._reasons:
            url = f"{self.base_url}/{API_VERSION}/feedback/{fp_type}/reasons"
            root = self._get_xml(url, None)
            reasons: dict[str, str] = {}
            for r in root.iter():
                guid, name = r.get("guid"), r.get("name")
                if _local(r.tag) == "reason" and guid:
                    reasons[guid] = name or ""
            self._reasons[fp_type] = reasons
        return self._reasons[fp_type]

    def _reason(self, fp_type: str) -> str:
        """The configured reason, else the only one, else one named a false positive."""
        reasons = self.feedback_reasons(fp_type)
        wanted = self.negative_reason.strip().lower()
        for guid, name in reasons.items():
            if wanted and wanted in (guid.lower(), name.lower()):
                return guid
        if not wanted and len(reasons) == 1:
            return next(iter(reasons))
        for guid, name in reasons.items():
            if not wanted and "false positive" in name.lower():
                return guid
        raise UpstreamError(
            f"ncmec: no negative-feedback reason for {fp_type} to use"
            f" (negative_reason {self.negative_reason!r}; NCMEC lists:"
            f" {', '.join(sorted(reasons.values())) or 'none'})",
            retry=False,
        )

    def _get_xml(self, url: str, params: list[tuple[str, str]] | None) -> ET.Element:
        try:
            response = self._http.request("GET", url, params=params)
        except UpstreamError as exc:
            if exc.status in (401, 403):
                raise UpstreamError(
                    f"{exc}: NCMEC refused the user and password (check the variables"
                    " named by --credentials-env, and the environment)",
                    retry=False,
                    status=exc.status,
                ) from None
            raise
        try:
            root: ET.Element = SafeET.fromstring(response.content)
        except (ET.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
            raise UpstreamError(f"ncmec: {urlsplit(url).path}: not XML", retry=True) from None
        return root


# -- reading records --------------------------------------------------------------------------
def _local(tag: str) -> str:
    """A tag without its namespace (NCMEC's one namespace tells nothing)."""
    return tag.rpartition("}")[2]


def _child(parent: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in parent if _local(c.tag) == name), None)


def _member_id(member: ET.Element) -> int | None:
    value = (member.get("id") or "").strip()
    return int(value) if value.isdigit() and len(value) <= 20 else None


def _unix_time(text: str | None) -> int | None:
    """NCMEC's times are ISO 8601 UTC ("2017-10-24T15:00:00Z", sometimes with .000)."""
    try:
        when = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return plausible_time(int(when.timestamp()))
    except (OverflowError, ValueError):
        return None


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fingerprints(element: ET.Element) -> list[tuple[SignalType, bytes]]:
    """The fingerprints hashmatch holds; others (sha1, pdna, by-reference TMK) are passed
    over, and one of ours that is not its hex makes the record malformed."""
    found: dict[SignalType, bytes] = {}
    for child in element:
        signal_type = FINGERPRINTS.get(_local(child.tag).lower())
        if signal_type is None or not (child.text or "").strip():
            continue
        try:
            found[signal_type] = signal_type.parse_hex(child.text or "")
        except BadParameter:
            raise _Malformed from None
    return list(found.items())


def _entry_of(upstream_id: str) -> tuple[str, str] | None:
    """(member id, entry id) of an upstream id this client made, else None."""
    member, _, entry = upstream_id.partition("/")
    return (member, entry) if member.isdigit() and entry else None


def _checked_link(link: str) -> str:
    """A next link as the client follows it: a path of this API, never another host
    (the credentials go with every request)."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"/{API_VERSION}/entries"):
        raise UpstreamError("ncmec: a paging link outside the entries API", retry=False)
    if ".." in parts.path or "\\" in link or any(ord(c) < 33 for c in link):
        raise UpstreamError("ncmec: a paging link outside the entries API", retry=False)
    return link


def _load(checkpoint: str | None) -> _Cursor:
    if not checkpoint:
        return _Cursor(0)
    try:
        data = json.loads(checkpoint)
        start = int(data["from"])
        if "to" not in data:
            return _Cursor(start)
        link = _checked_link(str(data["next"])) if data.get("next") else None
        return _Cursor(start, int(data["to"]), link, int(data["at"]))
    except (ValueError, TypeError, KeyError):
        raise UpstreamError("ncmec: unreadable checkpoint", retry=False) from None
