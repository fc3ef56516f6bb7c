"""A fake StopNCII.org hash API on loopback, as python-threatexchange's client and its test
data describe it (exchanges/clients/stopncii/api.py, tests/test_api.py): base URL <root>/v1,
`Ocp-Apim-Subscription-Key` on every call (401 with API Management's JSON otherwise) and
`x-functions-key` per endpoint (401 otherwise), GET /v1/FetchHashes?startTimestamp=&pageSize=
[&nextPageToken=] and POST /v1/SubmitFeedback.

A hash (signalType, hashValue) is one record; every change gives it a new lastModtimestamp
(the caller's) and sequence number. FetchHashes answers the records with lastModtimestamp >=
startTimestamp in (lastModtimestamp, sequence) order, keyset-paged: a nextPageToken is the
next record's key (so a record changed mid-run moves to the run's end, not shifting others),
bound to its startTimestamp. nextSetTimestamp is the next page's first lastModtimestamp, or
on the last page its newest (the reference calls it the best checkpoint; the edge is read
again, which is harmless). Tokens can be made stale (`expire_tokens`, `token_ttl_s`): 400.
`raw_next` holds bodies FetchHashes answers first (unreadable responses); SubmitFeedback
calls are kept in `feedback` (they do not change the records' CSPFeedbacks here).

Records: `add`/`update`/`withdraw`/`delete` one with an explicit timestamp, `add_raw` for a
malformed one, or `add_many(n, start)`: records numbered start..start+n-1 (hash
`bulk_hash(number)`), held as one arithmetic batch and rendered per page on demand.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from tests.fake_http import Answer, FakeServer, Request

SUBSCRIPTION_KEY, FETCH_KEY, FEEDBACK_KEY = "sub-0123456789", "fetch-0123456789", "fb-0123456789"
PREFIX = "/v1"
FETCH_PATH = f"{PREFIX}/FetchHashes"  # for fail_next / hold
FEEDBACK_PATH = f"{PREFIX}/SubmitFeedback"
DEFAULT_PAGE_SIZE = 800
SIGNAL_TYPES = ("Unknown", "ImagePDQ", "VideoMD5", "VideoTMK", "Text", "URL")
STATUSES = ("Unknown", "Received", "Active", "Withdrawn", "Deleted")
FEEDBACK_VALUES = (
    "Unknown", "None", "QualityUnknown", "PendingReview", "Blocked", "NotBlocked", "Withdrawn",
    "Deleted",
)  # fmt: skip
# Azure API Management's answer to a missing or wrong subscription key.
APIM_401 = {
    "statusCode": 401,
    "message": "Access denied due to invalid subscription key. Make sure to provide a valid"
    " key for an active subscription.",
}
_NBYTES = {"ImagePDQ": 32, "VideoMD5": 16}
_KEEP: object = object()


class FakeHash(NamedTuple):
    signal_type: str
    hash_value: str  # hex as on the wire
    ts: int  # lastModtimestamp
    status: str = "Received"
    seq: int = 0  # the order of changes: ties of one timestamp go by it
    cases: tuple[str, ...] = ()  # case numbers (each with the hash's status)
    raw: object = None  # not None: sent as is in place of the record (malformed ones)

    @property
    def key(self) -> tuple[int, int]:
        return self.ts, self.seq

    def wire(self) -> object:
        if self.raw is not None:
            return self.raw
        cases = self.cases or (_case_of(self.hash_value),)
        return {
            "lastModtimestamp": self.ts,
            "hashValue": self.hash_value,
            "hashStatus": self.status,
            "caseNumbers": {c: self.status for c in cases},
            "signalType": self.signal_type,
        }


@dataclass
class FeedbackCall:
    hash_value: str
    feedback_value: str
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    n: int
    start: int  # the number of its first record
    ts0: int
    step: int
    seq0: int
    signal_type: str
    status: str

    def key(self, j: int) -> tuple[int, int]:
        return self.ts0 + j * self.step, self.seq0 + j

    def first(self, lower: tuple[int, int]) -> int:
        """The first j whose key is >= lower (keys grow with j)."""
        return bisect_left(range(self.n), lower, key=self.key)

    def record(self, j: int) -> FakeHash:
        return stopncii_record(
            self.start + j,
            self.ts0 + j * self.step,
            signal_type=self.signal_type,
            status=self.status,
            seq=self.seq0 + j,
        )


def bulk_hash(number: int, signal_type: str = "ImagePDQ") -> bytes:
    """The hash of bulk record `number`: deterministic, random-looking."""
    size = _NBYTES[signal_type]
    return hashlib.blake2b(number.to_bytes(8, "big"), digest_size=size).digest()


def stopncii_record(
    number: int,
    ts: int,
    *,
    signal_type: str = "ImagePDQ",
    status: str = "Active",
    seq: int = 0,
) -> FakeHash:
    """Bulk record `number` as add_many makes it."""
    return FakeHash(signal_type, bulk_hash(number, signal_type).hex(), ts, status, seq)


def _case_of(hash_value: str) -> str:
    """A case number (a GUID upstream) derived from the hash: cheap and stable."""
    h = (hash_value + "0" * 32)[:32]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, bytes) else value


class FakeStopncii(FakeServer):
    def __init__(
        self,
        *,
        subscription_key: str = SUBSCRIPTION_KEY,
        fetch_key: str = FETCH_KEY,
        feedback_key: str = FEEDBACK_KEY,
        max_page_size: int = 1000,
    ) -> None:
        super().__init__()
        self.keys = {"FetchHashes": fetch_key, "SubmitFeedback": feedback_key}
        self.subscription_key = subscription_key
        self.max_page_size = max_page_size
        self.reset()

    def reset(self) -> None:
        """Empty upstream and the logs (a server shared by tests: closing one takes 0.5 s)."""
        with self.lock:
            self.requests.clear()
            self.fail_next.clear()
            self.retry_after_s = 0.0
            self.token_ttl_s: float | None = None  # tokens older than this: 400
            self.raw_next: list[bytes] = []  # bodies FetchHashes answers first (200)
            self._generation = 0  # of tokens: expire_tokens() refuses the older ones
            self._seq = 0
            self._rows: dict[tuple[str, str], FakeHash] = {}  # single and changed bulk ones
            self._batches: list[_Batch] = []
            self._overridden: set[tuple[int, int]] = set()  # (batch, j) now in _rows
            self._reverse: dict[int, dict[str, int]] = {}  # batch -> hash -> j, when asked
            self.feedback: list[FeedbackCall] = []

    @property
    def base_url(self) -> str:
        return super().base_url + PREFIX

    # -- upstream changes -------------------------------------------------------------------
    def add(
        self,
        hash_value: bytes | str,
        ts: int,
        *,
        signal_type: str = "ImagePDQ",
        status: str = "Received",
        cases: tuple[str, ...] = (),
    ) -> FakeHash:
        with self.lock:
            key = (signal_type, _hex(hash_value))
            if self._find(key) is not None:
                raise ValueError(f"{key} exists: update it")
            return self._put(FakeHash(signal_type, key[1], ts, status, 0, cases))

    def update(
        self,
        hash_value: bytes | str,
        ts: int,
        *,
        signal_type: str = "ImagePDQ",
        status: str | None = None,  # None: as it was
        cases: tuple[str, ...] | None = None,
    ) -> FakeHash:
        """A hash's new state (a hash is its record's identity: its value never changes)."""
        with self.lock:
            key = (signal_type, _hex(hash_value))
            old = self._current(key)
            new = old._replace(
                ts=ts,
                status=old.status if status is None else status,
                cases=old.cases if cases is None else cases,
            )
            return self._put(new)

    def withdraw(self, hash_value: bytes | str, ts: int, *, signal_type: str = "ImagePDQ") -> None:
        self.update(hash_value, ts, signal_type=signal_type, status="Withdrawn")

    def delete(self, hash_value: bytes | str, ts: int, *, signal_type: str = "ImagePDQ") -> None:
        self.update(hash_value, ts, signal_type=signal_type, status="Deleted")

    def add_raw(self, item: object, ts: int) -> None:
        """Anything as a record (malformed ones), at `ts` in the stream."""
        with self.lock:
            self._put(FakeHash("raw", f"raw-{self._seq}", ts, raw=item))

    def add_many(
        self,
        n: int,
        start: int = 0,
        *,
        ts: int | None = None,  # the first record's; default: all in the past hour and more
        step: int = 1,  # seconds between consecutive records (>= 0)
        signal_type: str = "ImagePDQ",
        status: str = "Active",
    ) -> None:
        """Records start..start+n-1 with hashes bulk_hash(number); O(1) memory."""
        assert step >= 0 and signal_type in _NBYTES
        first = ts if ts is not None else int(time.time()) - n * step - 3600
        with self.lock:
            self._batches.append(_Batch(n, start, first, step, self._seq, signal_type, status))
            self._seq += n

    def expire_tokens(self) -> None:
        """Every nextPageToken given so far is refused from now on (400)."""
        with self.lock:
            self._generation += 1

    def get(self, hash_value: bytes | str, signal_type: str = "ImagePDQ") -> FakeHash | None:
        with self.lock:
            return self._find((signal_type, _hex(hash_value)))

    def live(self) -> dict[tuple[str, str], FakeHash]:
        """Every hash Received or Active (bulk ones too: for small fakes)."""
        with self.lock:
            found = [*self._rows.values()]
            for bi, b in enumerate(self._batches):
                found += [b.record(j) for j in range(b.n) if (bi, j) not in self._overridden]
            return {
                (h.signal_type, h.hash_value): h
                for h in found
                if h.raw is None and h.status in ("Received", "Active")
            }

    def _put(self, record: FakeHash) -> FakeHash:
        record = record._replace(seq=self._seq)
        self._seq += 1
        self._rows[(record.signal_type, record.hash_value)] = record
        return record

    def _find(self, key: tuple[str, str]) -> FakeHash | None:
        if key in self._rows:
            return self._rows[key]
        place = self._bulk_place(key)
        return None if place is None else self._batches[place[0]].record(place[1])

    def _current(self, key: tuple[str, str]) -> FakeHash:
        if key in self._rows:
            return self._rows[key]
        place = self._bulk_place(key)
        if place is None:
            raise KeyError(key)
        self._overridden.add(place)  # its new state goes to _rows
        return self._batches[place[0]].record(place[1])

    def _bulk_place(self, key: tuple[str, str]) -> tuple[int, int] | None:
        signal_type, hash_value = key
        for bi, b in enumerate(self._batches):
            if b.signal_type != signal_type:
                continue
            if bi not in self._reverse:  # built once, on the first change of a bulk record
                self._reverse[bi] = {b.record(j).hash_value: j for j in range(b.n)}
            j = self._reverse[bi].get(hash_value)
            if j is not None and (bi, j) not in self._overridden:
                return bi, j
        return None

    # -- paging -----------------------------------------------------------------------------
    def _stream(self, lower: tuple[int, int]) -> Iterator[FakeHash]:
        """Records with key >= lower, by key."""
        singles = sorted((r for r in self._rows.values() if r.key >= lower), key=lambda r: r.key)
        return heapq.merge(
            singles, *(self._bulk(bi, lower) for bi in range(len(self._batches))), key=_key
        )

    def _bulk(self, bi: int, lower: tuple[int, int]) -> Iterator[FakeHash]:
        b = self._batches[bi]
        for j in range(b.first(lower), b.n):
            if (bi, j) not in self._overridden:
                yield b.record(j)

    def _token(self, start: int, record: FakeHash) -> str:
        data = {"s": start, "t": record.ts, "q": record.seq, "g": self._generation}
        data["i"] = int(time.time())
        return base64.b64encode(json.dumps(data).encode()).decode()

    def _read_token(self, token: str, start: int) -> tuple[int, int] | None:
        """The key a token resumes at, or None where it is not one for this query now."""
        try:
            data = json.loads(base64.b64decode(token, validate=True))
            key = (int(data["t"]), int(data["q"]))
            fresh = self.token_ttl_s is None or time.time() - data["i"] <= self.token_ttl_s
            valid = data["s"] == start and data["g"] == self._generation
        except (ValueError, TypeError, KeyError):
            return None
        return key if valid and fresh else None

    # -- protocol ---------------------------------------------------------------------------
    def route(self, request: Request) -> Answer:
        endpoint = request.path.removeprefix(PREFIX + "/")
        method = {"FetchHashes": "GET", "SubmitFeedback": "POST"}.get(endpoint)
        if method is None or not request.path.startswith(PREFIX + "/"):
            return _json(404, {"statusCode": 404, "message": "Resource not found"})
        if request.headers.get("Ocp-Apim-Subscription-Key") != self.subscription_key:
            return _json(401, APIM_401)
        if request.headers.get("x-functions-key") != self.keys[endpoint]:
            return Answer(401, b"", "text/plain")  # the Functions host says no more
        if request.method != method:
            return _json(405, {"statusCode": 405, "message": "Method not allowed"})
        if endpoint == "FetchHashes":
            return self._fetch(request)
        return self._submit_feedback(request.body)

    def _fetch(self, request: Request) -> Answer:
        if self.raw_next:
            return Answer(200, self.raw_next.pop(0))
        q = {k: v[0] for k, v in request.query.items()}
        try:
            start = int(q["startTimestamp"])
            size = max(1, min(self.max_page_size, int(q.get("pageSize", DEFAULT_PAGE_SIZE))))
        except (KeyError, ValueError):
            return _json(400, {"message": "startTimestamp (an integer) is required"})
        lower = (start, -1)
        if q.get("nextPageToken"):
            resumed = self._read_token(q["nextPageToken"], start)
            if resumed is None:
                return _json(400, {"message": "Invalid continuation token"})
            lower = max(lower, resumed)
        taken = [r for _, r in zip(range(size + 1), self._stream(lower), strict=False)]
        page, more = taken[:size], len(taken) > size
        if more:
            next_set, token = taken[size].ts, self._token(start, taken[size])
        else:
            next_set, token = (page[-1].ts if page else start), None
        return _json(
            200,
            {
                "count": len(page),
                "nextPageToken": token,
                "nextSetTimestamp": next_set,
                "hasMoreRecords": more,
                "hashRecords": [r.wire() for r in page],
            },
        )

    def _submit_feedback(self, body: bytes) -> Answer:
        try:
            data = json.loads(body)
            items = data["hashFeedbacks"]
            calls = [
                FeedbackCall(i["hashValue"], i["feedbackValue"], list(i.get("tags", [])))
                for i in items
            ]
        except (ValueError, TypeError, KeyError):
            return _json(400, {"message": "hashFeedbacks required"})
        bad = [
            c
            for c in calls
            if not isinstance(c.hash_value, str)
            or c.feedback_value not in FEEDBACK_VALUES
            or not all(isinstance(t, str) for t in c.tags)
        ]
        if bad or data.get("count") != len(calls):
            return _json(400, {"message": "count, hashValue, feedbackValue and tags"})
        self.feedback.extend(calls)
        return _json(200, {})


def _key(record: FakeHash) -> tuple[int, int]:
    return record.key


def _json(status: int, data: object) -> Answer:
    return Answer(status, json.dumps(data).encode())
