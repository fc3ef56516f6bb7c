"""A fake NCMEC hash-sharing API (v2) on loopback, as python-threatexchange's client and test
data describe it (exchanges/clients/ncmec/hash_api.py, tests/data.py): HTTP Basic (401
otherwise), GET /v2/status, GET /v2/entries?from=&to= (ISO 8601 UTC; here `from` inclusive,
`to` exclusive) with <paging><next> links relative to the base URL, GET
/v2/feedback/<TYPE>/reasons and PUT /v2/entries/<member>/<entry>/<TYPE>/feedback.

Like the real API, a window's entries do NOT come in time order: every record has a row
(its place of insertion) and pages go by a key that shuffles rows within blocks of
`shuffle_block`; a next link's `start` is the next key (keyset paging, so a record that
leaves a window mid-read does not shift the others) and `max` the window's largest key.

Records: `add`/`update`/`delete` one with an explicit timestamp, or `add_many(n, start)`:
records numbered start..start+n-1 (entry id the number, hashes `bulk_hashes(number)`),
held as one arithmetic batch and rendered per page on demand (1,000,000 cost nothing).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import math
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET

from tests.fake_http import Answer, FakeServer, Request

USER, PASSWORD = "user", "password"
PREFIX = "/hashsharing"  # the real base URLs have a path: next links are relative to it
ENTRIES_PATH = f"{PREFIX}/v2/entries"  # for fail_next / hold
STATUS_PATH = f"{PREFIX}/v2/status"
XMLNS = "https://hashsharing.ncmec.org/hashsharing/v2"
MEMBER_ID, MEMBER_NAME = 42, "Example Member"
OWN_ID, OWN_NAME = 1, "Fake ESP"  # whom /v2/status names
DEFAULT_REASON = ("01234567-abcd-0123-4567-012345678900", "Not CSAM")
FEEDBACK_TYPES = ("MD5", "SHA1", "PDNA", "PDQ", "NETCLEAN", "VIDENTIFIER", "TMK_PDQF")
_KEEP: object = object()


class FakeEntry(NamedTuple):
    entry_id: str
    ts: int  # Unix seconds
    member_id: int | str = MEMBER_ID  # a str that is not digits: a malformed record
    member_name: str = MEMBER_NAME
    kind: str = "image"  # or "video"
    classification: str | None = "A1"
    fingerprints: tuple[tuple[str, str], ...] = ()  # (tag, text) as on the wire
    deleted: bool = False

    def print_of(self, tag: str) -> str | None:
        return next((text for t, text in self.fingerprints if t == tag), None)


@dataclass
class FeedbackCall:
    member: str
    entry: str
    fp_type: str
    vote: str  # "affirmative" or "negative"
    reasons: list[str] = field(default_factory=list)  # the guids of a negative one


@dataclass(frozen=True)
class _Batch:
    row0: int
    n: int
    start: int  # the number of its first record
    ts0: int
    step: int
    member_id: int
    member_name: str
    classification: str
    kind: str

    def rows(self, t_from: int, t_to: int) -> tuple[int, int]:
        """The rows whose timestamps lie in [t_from, t_to)."""
        if self.step == 0:
            inside = t_from <= self.ts0 < t_to
            return (self.row0, self.row0 + self.n) if inside else (self.row0, self.row0)
        lo = max(0, min(self.n, math.ceil((t_from - self.ts0) / self.step)))
        hi = max(lo, min(self.n, math.ceil((t_to - self.ts0) / self.step)))
        return self.row0 + lo, self.row0 + hi

    def entry(self, row: int) -> FakeEntry:
        j = row - self.row0
        return ncmec_record(
            self.start + j,
            self.ts0 + j * self.step,
            member_id=self.member_id,
            member_name=self.member_name,
            classification=self.classification,
            kind=self.kind,
        )


def bulk_hashes(number: int) -> tuple[bytes, bytes]:
    """(PDQ, MD5) of bulk record `number`: deterministic, random-looking."""
    digest = hashlib.blake2b(number.to_bytes(8, "big"), digest_size=48).digest()
    return digest[:32], digest[32:]


def ncmec_record(
    number: int,
    ts: int,
    *,
    member_id: int = MEMBER_ID,
    member_name: str = MEMBER_NAME,
    classification: str = "A1",
    kind: str = "image",
) -> FakeEntry:
    """Bulk record `number` (entry id str(number)) as add_many makes it."""
    pdq, md5 = bulk_hashes(number)
    prints = (("md5", md5.hex()), ("pdq", pdq.hex()))
    return FakeEntry(str(number), ts, member_id, member_name, kind, classification, prints)


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _link_time(ts: int) -> str:
    """A time as NCMEC's next links carry it: milliseconds, colons escaped."""
    return quote(time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts)), safe="")


def _parse_time(text: str) -> int:
    when = datetime.fromisoformat(unquote(text))
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


class FakeNcmec(FakeServer):
    def __init__(
        self,
        *,
        user: str = USER,
        password: str = PASSWORD,
        page_size: int = 1000,
        shuffle_block: int = 4096,
    ) -> None:
        super().__init__()
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.reset(page_size=page_size, shuffle_block=shuffle_block)

    def reset(self, *, page_size: int = 1000, shuffle_block: int = 4096) -> None:
        """Empty upstream and the logs (a server shared by tests: closing one takes 0.5 s)."""
        with self.lock:
            self.requests.clear()
            self.fail_next.clear()
            self.retry_after_s = 0.0
            self.page_size = page_size
            self.block = shuffle_block
            a = 2654435761 % shuffle_block | 1
            while math.gcd(a, shuffle_block) != 1:
                a += 2
            self._perm = [(x * a + 7) % shuffle_block for x in range(shuffle_block)]
            self._inv = [0] * shuffle_block
            for x, k in enumerate(self._perm):
                self._inv[k] = x
            self._batches: list[_Batch] = []
            self._row0s: list[int] = []  # of the batches, for bisect
            self._max_keys: dict[tuple[int, int, int], int] = {}  # (from, to, changes) ->
            self._changes = 0
            self._rows: dict[int, FakeEntry] = {}  # single records and changed bulk ones
            self._ids: dict[str, int] = {}  # entry id -> row, of those
            self._next_row = 0
            self.feedback: list[FeedbackCall] = []
            self.reasons: dict[str, list[tuple[str, str]]] = {
                t: [DEFAULT_REASON] for t in FEEDBACK_TYPES
            }

    @property
    def base_url(self) -> str:
        return super().base_url + PREFIX

    # -- upstream changes -------------------------------------------------------------------
    def add(
        self,
        entry_id: str,
        ts: int,
        *,
        pdq: bytes | str | None = None,
        md5: bytes | str | None = None,
        fingerprints: dict[str, str] | None = None,  # other tags, or malformed values
        classification: str | None = "A1",
        member_id: int | str = MEMBER_ID,
        member_name: str = MEMBER_NAME,
        kind: str = "image",
    ) -> FakeEntry:
        prints = dict(fingerprints or {})
        if md5 is not None:
            prints["md5"] = _hex(md5)
        if pdq is not None:
            prints["pdq"] = _hex(pdq)
        entry = FakeEntry(
            entry_id,
            ts,
            member_id,
            member_name,
            kind,
            classification,
            tuple(prints.items()),
        )
        with self.lock:
            if self._row_of(entry_id) is not None:
                raise ValueError(f"entry {entry_id!r} exists: update it")
            row = self._next_row
            self._next_row += 1
            self._rows[row], self._ids[entry_id] = entry, row
            self._changes += 1
        return entry

    def update(
        self,
        entry_id: str,
        ts: int,
        *,
        pdq: object = _KEEP,  # bytes or hex; None drops it
        md5: object = _KEEP,
        classification: object = _KEEP,
        fingerprints: dict[str, str] | None = None,  # replaces every fingerprint
    ) -> FakeEntry:
        with self.lock:
            row, old = self._current(entry_id)
            prints = dict(old.fingerprints) if fingerprints is None else dict(fingerprints)
            for tag, value in (("pdq", pdq), ("md5", md5)):
                if value is None:
                    prints.pop(tag, None)
                elif value is not _KEEP:
                    assert isinstance(value, bytes | str)
                    prints[tag] = _hex(value)
            label = old.classification if classification is _KEEP else classification
            assert label is None or isinstance(label, str)
            new = old._replace(
                ts=ts, fingerprints=tuple(prints.items()), classification=label, deleted=False
            )
            self._rows[row], self._ids[entry_id] = new, row
            self._changes += 1
            return new

    def delete(self, entry_id: str, ts: int) -> None:
        with self.lock:
            row, old = self._current(entry_id)
            self._rows[row] = old._replace(ts=ts, fingerprints=(), deleted=True)
            self._changes += 1
            self._ids[entry_id] = row

    def add_many(
        self,
        n: int,
        start: int = 0,
        *,
        ts: int | None = None,  # the first record's; default: all in the past hour and more
        step: int = 1,  # seconds between consecutive records
        member_id: int = MEMBER_ID,
        member_name: str = MEMBER_NAME,
        classification: str = "A1",
        kind: str = "image",
    ) -> None:
        """Records start..start+n-1, timestamps ts, ts+step, ...; O(1) memory."""
        first = ts if ts is not None else int(time.time()) - n * step - 3600
        with self.lock:
            row0 = -(-self._next_row // self.block) * self.block  # a block of its own
            self._changes += 1
            self._row0s.append(row0)
            self._batches.append(
                _Batch(row0, n, start, first, step, member_id, member_name, classification, kind)
            )
            self._next_row = -(-(row0 + n) // self.block) * self.block

    def get(self, entry_id: str) -> FakeEntry | None:
        with self.lock:
            row = self._row_of(entry_id)
            return None if row is None else self._entry(row)

    def live(self) -> dict[str, FakeEntry]:
        """Every entry not deleted (bulk ones too: for small fakes)."""
        with self.lock:
            rows = [r for b in self._batches for r in range(b.row0, b.row0 + b.n)]
            found = (self._entry(r) for r in [*rows, *self._rows])
            return {e.entry_id: e for e in found if not e.deleted}

    def _row_of(self, entry_id: str) -> int | None:
        if entry_id in self._ids:
            return self._ids[entry_id]
        if entry_id.isdigit():
            number = int(entry_id)
            for b in self._batches:
                if b.start <= number < b.start + b.n:
                    return b.row0 + number - b.start
        return None

    def _current(self, entry_id: str) -> tuple[int, FakeEntry]:
        row = self._row_of(entry_id)
        if row is None:
            raise KeyError(entry_id)
        return row, self._entry(row)

    def _entry(self, row: int) -> FakeEntry:
        if row in self._rows:
            return self._rows[row]
        i = bisect_right(self._row0s, row) - 1
        return self._batches[i].entry(row)

    # -- paging -----------------------------------------------------------------------------
    def _key(self, row: int) -> int:
        return row - row % self.block + self._perm[row % self.block]

    def _bulk_keys(self, t_from: int, t_to: int, start: int) -> Iterator[tuple[int, int]]:
        """(key, row) of the unchanged bulk records in the window, key >= start, by key."""
        b = self.block
        for batch in self._batches:
            lo, hi = batch.rows(t_from, t_to)
            if lo >= hi:
                continue
            for blk in range(max(lo // b, start // b), (hi - 1) // b + 1):
                first = start - blk * b if blk == start // b else 0
                for k in range(max(0, first), b):
                    row = blk * b + self._inv[k]
                    if lo <= row < hi and row not in self._rows:
                        yield blk * b + k, row

    def _window(self, t_from: int, t_to: int, start: int) -> Iterator[tuple[int, int]]:
        changed = sorted(
            (key, row)
            for row, e in self._rows.items()
            if t_from <= e.ts < t_to and (key := self._key(row)) >= start
        )
        return heapq.merge(self._bulk_keys(t_from, t_to, start), changed)

    def _max_key(self, t_from: int, t_to: int) -> int:
        """The largest key in the window (a next link's `max`), computed once a window."""
        cache = (t_from, t_to, self._changes)
        if cache not in self._max_keys:
            self._max_keys = {cache: self._compute_max_key(t_from, t_to)}
        return self._max_keys[cache]

    def _compute_max_key(self, t_from: int, t_to: int) -> int:
        best = max(
            (self._key(r) for r, e in self._rows.items() if t_from <= e.ts < t_to), default=0
        )
        for batch in self._batches:
            lo, hi = batch.rows(t_from, t_to)
            if lo < hi:
                tail = range(max(lo, (hi - 1) - (hi - 1) % self.block), hi)
                best = max(best, max(self._key(r) for r in tail))
        return best

    # -- protocol ---------------------------------------------------------------------------
    def route(self, request: Request) -> Answer:
        if request.headers.get("Authorization") != self._auth:
            return Answer(401, b"", "text/plain", {"WWW-Authenticate": 'Basic realm="NCMEC"'})
        path = request.path.removeprefix(PREFIX)
        parts = path.strip("/").split("/")
        if request.method == "GET" and path == "/v2/status":
            return _xml(
                f'<status xmlns="{XMLNS}"><ipAddress>127.0.0.1</ipAddress>'
                f"<username>{escape(USER)}</username>"
                f'<member id="{OWN_ID}">{escape(OWN_NAME)}</member></status>'
            )
        if request.method == "GET" and path == "/v2/entries":
            return self._entries(request)
        if request.method == "GET" and parts[:2] == ["v2", "feedback"] and parts[3:] == ["reasons"]:
            return self._reasons(parts[2])
        if request.method == "PUT" and parts[:2] == ["v2", "entries"] and parts[5:] == ["feedback"]:
            return self._feedback(parts[2], unquote(parts[3]), parts[4], request.body)
        return Answer(404, b"", "text/plain")

    def _entries(self, request: Request) -> Answer:
        q = {k: v[0] for k, v in request.query.items()}
        try:
            t_from, t_to = _parse_time(q["from"]), _parse_time(q["to"])
            start = int(q.get("start", "0"))
            size = max(1, int(q.get("size", self.page_size)))
        except (KeyError, ValueError):
            return Answer(400, b"<error>from and to are required</error>", "application/xml")
        taken = list(zip(range(size + 1), self._window(t_from, t_to, start), strict=False))
        page = [self._entry(row) for _, (_, row) in taken[:size]]
        paging = ""
        if len(taken) > size:
            next_key = taken[size][1][0]
            link = (
                f"/v2/entries?from={_link_time(t_from)}&to={_link_time(t_to)}"
                f"&start={next_key}&size={size}&max={self._max_key(t_from, t_to)}"
            )
            paging = f"<paging><next>{escape(link)}</next></paging>"
        groups = "".join(_group(kind, [e for e in page if e.kind == kind]) for kind in KINDS)
        return _xml(f'<queryResult xmlns="{XMLNS}">{groups}{paging}</queryResult>')

    def _reasons(self, fp_type: str) -> Answer:
        if fp_type not in self.reasons:
            return Answer(404, b"", "text/plain")
        body = "".join(
            f"<reason guid={quoteattr(g)} name={quoteattr(n)} type={quoteattr(fp_type)}/>"
            for g, n in self.reasons[fp_type]
        )
        return _xml(f'<availableFeedbackReasons xmlns="{XMLNS}">{body}</availableFeedbackReasons>')

    def _feedback(self, member: str, entry_id: str, fp_type: str, body: bytes) -> Answer:
        row = self._row_of(entry_id)
        if row is None or str(self._entry(row).member_id) != member:
            return Answer(404, b"", "text/plain")
        if fp_type not in self.reasons:
            return Answer(400, b"", "text/plain")
        try:
            root = SafeET.fromstring(body)
        except Exception:
            return Answer(400, b"", "text/plain")
        if root.tag != f"{{{XMLNS}}}feedbackSubmission" or len(root) != 1:
            return Answer(400, b"", "text/plain")
        vote = root[0].tag.rpartition("}")[2]
        guids = [(g.text or "").strip() for g in root.iter(f"{{{XMLNS}}}guid")]
        known = {g for g, _ in self.reasons[fp_type]}
        if vote not in ("affirmative", "negative") or (vote == "negative") != bool(guids):
            return Answer(400, b"", "text/plain")
        if not set(guids) <= known:
            return Answer(400, b"", "text/plain")
        self.feedback.append(FeedbackCall(member, entry_id, fp_type, vote, guids))
        return _xml(f'<submissionResult xmlns="{XMLNS}"/>')


KINDS = ("image", "video")


def _group(kind: str, entries: list[FakeEntry]) -> str:
    if not entries:
        return f'<{kind}s count="0"/>'
    newest = _iso(max(e.ts for e in entries))
    body = "".join(_record(e) for e in entries)
    return f'<{kind}s count="{len(entries)}" maxTimestamp="{newest}">{body}</{kind}s>'


def _esc(text: str) -> str:
    return text if text.isalnum() else escape(text)  # hex and ids: nothing to escape


def _record(e: FakeEntry) -> str:
    member = f"<member id={quoteattr(str(e.member_id))}>{_esc(e.member_name)}</member>"
    head = f"{member}<timestamp>{_iso(e.ts)}</timestamp><id>{_esc(e.entry_id)}</id>"
    if e.deleted:
        tag = "deleted" + e.kind.capitalize()
        return f"<{tag}>{head}</{tag}>"
    label = f"<classification>{_esc(e.classification)}</classification>" if e.classification else ""
    prints = "".join([f"<{t}>{_esc(v)}</{t}>" for t, v in e.fingerprints])
    return f"<{e.kind}>{head}{label}<fingerprints>{prints}</fingerprints></{e.kind}>"


def _xml(text: str) -> Answer:
    body = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + text
    return Answer(200, body.encode(), "application/xml")
