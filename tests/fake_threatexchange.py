"""A fake of Meta's ThreatExchange Graph API for tests and benchmarks: privacy groups'
/threat_updates (ordered by update time, `paging.next` cursors, start_time/stop_time, the
`fields` projection), an indicator's descriptors, and reactions POSTed to descriptors; an
app access token "<app id>|<secret>" in the query, a wrong one answered as Graph does (HTTP
400, OAuthException code 190).

Upstream changes live: add/update/delete move an indicator to the end of its group's update
list, at the real clock's second (as upstream: clients bound a pass by their own clock) or
`at=`. start_time and stop_time are both inclusive here. `add_many(n)` stands for n indicators
without a Python object each: their hashes are derived from their index when a page is
served, so a million cost a few bytes apiece until someone updates one of them.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qs, urlencode

from tests.fake_http import Answer, FakeServer, Request

VERSION = "v21.0"
APP_ID = "1234567890123"
APP_SECRET = "fake-app-secret-0123456789abcdef"
TOKEN = f"{APP_ID}|{APP_SECRET}"
OTHER_APP = "616912251743987"  # who owns the fake's descriptors unless told otherwise
BULK_ID_BASE = 10**15  # add_many's indicator i has id BULK_ID_BASE + i
BULK_DESCRIPTOR_BASE = 2 * 10**15  # ... and its one descriptor BULK_DESCRIPTOR_BASE + i
BULK_TAGS = ("bulk",)
REACTION_TYPES = frozenset(
    {"HELPFUL", "NOT_HELPFUL", "OUTDATED", "SAW_THIS_TOO", "WANT_MORE_INFO"}
    | {"DISAGREE_WITH_TAGS", "INGESTED", "IN_REVIEW"}
)
DEFAULT_LIMIT = 25  # Graph's page size when a call names none
MAX_LIMIT = 5000


@dataclass
class Descriptor:
    id: str
    owner: str | None = OTHER_APP  # None: the descriptor is shown without its owner
    tags: tuple[str, ...] = ()
    status: str = "MALICIOUS"


@dataclass
class Indicator:
    id: str
    type: str
    indicator: str
    descriptors: list[Descriptor] = field(default_factory=list)
    should_delete: bool = False
    visible: bool = True  # False: served without `descriptors` (python-threatexchange #834)
    raw: object = None  # served as is (malformed-record tests)
    time: int = 0
    seq: int = 0


class Live(NamedTuple):
    type: str
    indicator: str  # hex
    tags: tuple[str, ...]  # sorted, of the descriptors not calling it benign
    owner: str | None  # of the oldest such descriptor that shows one


@dataclass(frozen=True)
class _Bulk:
    start: int  # add_many's first index
    n: int
    time: int
    seq: int  # record k of the block has sequence number seq + k
    type: str


@dataclass
class _Group:
    hand: dict[str, Indicator] = field(default_factory=dict)
    order: list[tuple[int, int, str]] = field(default_factory=list)  # (time, seq, id)
    bulk: list[_Bulk] = field(default_factory=list)


def bulk_id(i: int) -> str:
    return str(BULK_ID_BASE + i)


def bulk_value(i: int, te_type: str = "HASH_PDQ") -> bytes:
    """add_many's record i's hash: deterministic, random-looking, the type's size."""
    size = 16 if "MD5" in te_type else 32
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=size, person=b"fake-te").digest()


class FakeThreatExchange(FakeServer):
    """`base_url` is what the client takes (it ends with the API version)."""

    def __init__(self, privacy_groups: Sequence[str] = ("1001",), *, token: str = TOKEN) -> None:
        super().__init__()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive request on loopback.
        self.server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        self.token = token
        self.groups = {str(g): _Group() for g in privacy_groups}
        self.tags_as_edge = False  # True: tags as Graph's edge {"data": [{"id", "text"}]}
        self.reactions: list[tuple[str, str, str]] = []  # (descriptor id, reaction, app id)
        self.throttle_next = 0  # answer this many requests with Graph's rate-limit error
        self._reacted: dict[str, dict[str, set[str]]] = {}  # descriptor -> reaction -> apps
        self._seq = 0
        self._ids = 5_000_000_000

    def reset(self, privacy_groups: Sequence[str] | None = None) -> None:
        """Empty again, as new (a server shared by tests: closing one costs half a second)."""
        with self.lock:
            self.groups = {str(g): _Group() for g in privacy_groups or self.groups}
            self.requests.clear()
            self.fail_next.clear()
            self.retry_after_s = 0.0
            self.tags_as_edge = False
            self.reactions.clear()
            self.throttle_next = 0
            self._reacted.clear()
            self.__dict__.pop("route", None)  # a test's replacement of route()

    @property
    def base_url(self) -> str:
        return f"{super().base_url}/{VERSION}"

    def updates_path(self, group: str = "1001") -> str:
        """The path of a group's threat_updates (for fail_next, hold, arrived)."""
        return f"/{VERSION}/{group}/threat_updates/"

    # -- upstream changes -------------------------------------------------------------------
    def add(
        self,
        indicator: str,
        te_type: str = "HASH_PDQ",
        *,
        id: str | None = None,
        tags: Sequence[str] = ("csam",),
        owner: str | None = OTHER_APP,
        status: str = "MALICIOUS",
        descriptors: Sequence[Descriptor] | None = None,
        group: str | None = None,
        at: int | None = None,
    ) -> str:
        """A new indicator (one descriptor unless `descriptors`); returns its id."""
        with self.lock:
            indicator_id = id or self._new_id()
            if descriptors is None:
                descriptors = [Descriptor(self._new_id(), owner, tuple(tags), status)]
            record = Indicator(indicator_id, te_type, indicator, list(descriptors))
            self._put(self._group(group), record, at)
            return indicator_id

    def update(
        self,
        indicator_id: str,
        *,
        indicator: str | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
        owner: str | None = None,
        descriptors: Sequence[Descriptor] | None = None,
        visible: bool | None = None,
        group: str | None = None,
        at: int | None = None,
    ) -> None:
        """Changes an indicator's descriptors (tags/status/owner: of all of them) and moves
        it to the end. `indicator` changes the hash itself, which ThreatExchange never
        does (the hash is the indicator), for tests of "a record as it is now"."""
        with self.lock:
            g = self._group(group)
            record = self._hand(g, indicator_id)
            if indicator is not None:
                record.indicator = indicator
            if descriptors is not None:
                record.descriptors = list(descriptors)
            for d in record.descriptors:
                d.tags = tuple(tags) if tags is not None else d.tags
                d.status = status or d.status
                d.owner = owner or d.owner
            if visible is not None:
                record.visible = visible
            record.should_delete = False
            self._put(g, record, at)

    def delete(self, indicator_id: str, *, group: str | None = None, at: int | None = None) -> None:
        """The indicator leaves the group: a should_delete event at the end."""
        with self.lock:
            g = self._group(group)
            record = self._hand(g, indicator_id)
            record.should_delete, record.descriptors = True, []
            self._put(g, record, at)

    def add_raw(self, item: object, *, group: str | None = None) -> None:
        """An item served exactly as given (its last_updated, if an int, orders it)."""
        with self.lock:
            t = item.get("last_updated") if isinstance(item, dict) else None
            record = Indicator(self._new_id(), "RAW", "", raw=item)
            self._put(self._group(group), record, t if isinstance(t, int) else None)

    def add_many(
        self,
        n: int,
        start: int = 0,
        *,
        group: str | None = None,
        at: int | None = None,
        te_type: str = "HASH_PDQ",
    ) -> None:
        """n valid indicators, indices start..start+n-1 (see bulk_id, bulk_value), owned
        by OTHER_APP and tagged BULK_TAGS, all at one time, in index order."""
        with self.lock:
            g = self._group(group)
            t = self._time(at)
            g.bulk.append(_Bulk(start, n, t, self._seq, te_type))
            self._seq += n

    def live(self, group: str | None = None) -> dict[str, Live]:
        """What a synced copy should hold: the indicators that are in the group and have a
        descriptor not calling them benign (status NON_MALICIOUS), by id."""
        with self.lock:
            g = self._group(group)
            out = {}
            for _, _, key in self._entries(g, (0, -1), None, ()):
                record = self._record(g, key)
                positive = [d for d in record.descriptors if d.status != "NON_MALICIOUS"]
                if record.raw is None and not record.should_delete and record.visible and positive:
                    tags = tuple(sorted({t for d in positive for t in d.tags}))
                    oldest = sorted(positive, key=lambda d: (len(d.id), d.id))
                    owner = next((d.owner for d in oldest if d.owner), None)
                    out[record.id] = Live(record.type, record.indicator, tags, owner)
            return out

    # -- protocol ---------------------------------------------------------------------------
    def route(self, request: Request) -> Answer:
        form = parse_qs(request.body.decode(errors="replace")) if request.body else {}
        params = {k: v[-1] for k, v in {**request.query, **form}.items()}
        if params.get("access_token") != self.token:
            answer = _error(400, 190, "OAuthException", "Invalid OAuth access token.")
            answer.headers["WWW-Authenticate"] = 'OAuth "Facebook Platform" "invalid_token"'
            return answer
        if self.throttle_next > 0:  # Graph's "application request limit reached"
            self.throttle_next -= 1
            return _error(400, 4, "OAuthException", "Application request limit reached")
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0] != VERSION or len(parts) not in (2, 3):
            return _error(400, 2500, "OAuthException", "Unknown path components")
        if len(parts) == 3 and parts[2] == "threat_updates" and request.method == "GET":
            return self._threat_updates(parts[1], params)
        if len(parts) == 2 and request.method == "GET":
            return self._indicator(parts[1], params)
        if len(parts) == 2 and request.method == "POST":
            return self._react(parts[1], params)
        return _error(400, 100, "GraphMethodException", "Unsupported request")

    def _threat_updates(self, group_id: str, params: dict[str, str]) -> Answer:
        g = self.groups.get(group_id)
        if g is None:
            return _missing(group_id)
        try:
            start = int(params.get("start_time") or 0)
            stop = int(params["stop_time"]) if params.get("stop_time") else None
            limit = min(MAX_LIMIT, max(1, int(params.get("limit") or DEFAULT_LIMIT)))
            after = _cursor(params["after"]) if params.get("after") else None
        except (ValueError, KeyError):
            return _error(400, 100, "OAuthException", "Invalid parameter")
        types = tuple(t for t in (params.get("types") or "").split(",") if t)
        low = max((start, -1), (after[0], after[1] + 1)) if after else (start, -1)
        fields = _top_fields(params.get("fields") or "id")
        data, last = [], None
        for entry in self._entries(g, low, stop, types):
            if len(data) == limit:
                next_params = {k: v for k, v in params.items() if k != "after"}
                next_params["after"] = _encode_cursor(last or entry[:2])
                body = {
                    "data": data,
                    "paging": {
                        "cursors": {"after": next_params["after"]},
                        "next": f"{self.base_url}/{group_id}/threat_updates/?"
                        + urlencode(next_params),
                    },
                }
                return _ok(body)
            data.append(self._item(g, entry[2], fields))
            last = entry[:2]
        return _ok({"data": data, "paging": {"cursors": {}}} if data else {"data": []})

    def _indicator(self, indicator_id: str, params: dict[str, str]) -> Answer:
        for g in self.groups.values():
            key: object = indicator_id if indicator_id in g.hand else None
            key = key or self._bulk_index(g, indicator_id)
            if key is not None:
                record = self._record(g, key)
                data = [{"id": d.id, "owner": _owner(d)} for d in record.descriptors]
                body: dict[str, object] = {"id": indicator_id}
                if "descriptors" in (params.get("fields") or ""):
                    body["descriptors"] = {"data": data}
                return _ok(body)
        return _missing(indicator_id)

    def _react(self, descriptor_id: str, params: dict[str, str]) -> Answer:
        if not self._descriptor_exists(descriptor_id):
            return _missing(descriptor_id)
        reactions = [r for r in (params.get("reactions") or "").split(",") if r]
        if not reactions or not set(reactions) <= REACTION_TYPES:
            return _error(400, 100, "OAuthException", "Invalid parameter: reactions")
        app = self.token.partition("|")[0]
        for r in reactions:
            self.reactions.append((descriptor_id, r, app))
            self._reacted.setdefault(descriptor_id, {}).setdefault(r, set()).add(app)
        return _ok({"success": True})

    # -- storage ----------------------------------------------------------------------------
    def _group(self, group: str | None) -> _Group:
        return self.groups[group or next(iter(self.groups))]

    def _new_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def _time(self, at: int | None) -> int:
        return at if at is not None else int(time.time())

    def _put(self, g: _Group, record: Indicator, at: int | None) -> None:
        """(Re)places the record at the end of the group's update list."""
        old = g.hand.get(record.id)
        if old is not None and (old.time, old.seq, old.id) in g.order:
            g.order.remove((old.time, old.seq, old.id))
        record.time, record.seq = self._time(at), self._seq
        self._seq += 1
        g.hand[record.id] = record
        bisect.insort(g.order, (record.time, record.seq, record.id))

    def _hand(self, g: _Group, indicator_id: str) -> Indicator:
        """The indicator as a record of its own (a bulk one becomes one when changed)."""
        record = g.hand.get(indicator_id)
        if record is not None:
            return record
        i = self._bulk_index(g, indicator_id)
        if i is None:
            raise KeyError(indicator_id)
        block = next(b for b in g.bulk if b.start <= i < b.start + b.n)
        return _bulk_record(i, block)

    def _bulk_index(self, g: _Group, indicator_id: str) -> int | None:
        if not indicator_id.isdigit() or int(indicator_id) < BULK_ID_BASE:
            return None
        i = int(indicator_id) - BULK_ID_BASE
        return i if any(b.start <= i < b.start + b.n for b in g.bulk) else None

    def _descriptor_exists(self, descriptor_id: str) -> bool:
        for g in self.groups.values():
            if any(d.id == descriptor_id for r in g.hand.values() for d in r.descriptors):
                return True
            if descriptor_id.isdigit() and int(descriptor_id) >= BULK_DESCRIPTOR_BASE:
                i = bulk_id(int(descriptor_id) - BULK_DESCRIPTOR_BASE)
                if self._bulk_index(g, i) is not None and i not in g.hand:
                    return True
        return False

    def _entries(
        self, g: _Group, low: tuple[int, int], stop: int | None, types: tuple[str, ...]
    ) -> Iterator[tuple[int, int, object]]:
        """(time, seq, key) from `low` on, in update order: key an id (a record of its own)
        or an int (add_many's index)."""
        hand = (e for e in g.order[bisect.bisect_left(g.order, low) :])
        merged = heapq.merge(hand, *(self._bulk_entries(g, b, low) for b in g.bulk))
        for t, seq, key in merged:
            if stop is not None and t > stop:
                return
            if types and self._type_of(g, key) not in types:
                continue
            yield t, seq, key

    def _bulk_entries(
        self, g: _Group, b: _Bulk, low: tuple[int, int]
    ) -> Iterator[tuple[int, int, object]]:
        if b.time < low[0]:
            return
        first = max(0, low[1] - b.seq) if b.time == low[0] else 0
        for k in range(first, b.n):
            i = b.start + k
            if bulk_id(i) not in g.hand:  # changed since: served as its own record
                yield b.time, b.seq + k, i

    def _type_of(self, g: _Group, key: object) -> str:
        if isinstance(key, int):
            return next(b.type for b in g.bulk if b.start <= key < b.start + b.n)
        return g.hand[str(key)].type

    def _record(self, g: _Group, key: object) -> Indicator:
        if isinstance(key, int):
            block = next(b for b in g.bulk if b.start <= key < b.start + b.n)
            return _bulk_record(key, block)
        return g.hand[str(key)]

    def _item(self, g: _Group, key: object, fields: set[str]) -> object:
        record = self._record(g, key)
        if record.raw is not None:
            return record.raw
        item: dict[str, object] = {
            "id": record.id,
            "indicator": record.indicator,
            "type": record.type,
            "last_updated": record.time,
            "should_delete": record.should_delete,
        }
        if record.visible and not record.should_delete:
            item["descriptors"] = {"data": [self._descriptor(d) for d in record.descriptors]}
        return {k: v for k, v in item.items() if k in fields or k == "id"}

    def _descriptor(self, d: Descriptor) -> dict[str, object]:
        tags: object = list(d.tags)
        if self.tags_as_edge:
            tags = {"data": [{"id": str(1000 + n), "text": t} for n, t in enumerate(d.tags)]}
        reacted = self._reacted.get(d.id, {})
        out: dict[str, object] = {
            "id": d.id,
            "tags": tags,
            "status": d.status,
            "reactions": [{"key": r, "value": ",".join(sorted(a))} for r, a in reacted.items()],
        }
        if d.owner is not None:
            out["owner"] = _owner(d)
        return out


def _bulk_record(i: int, b: _Bulk) -> Indicator:
    descriptor = Descriptor(str(BULK_DESCRIPTOR_BASE + i), OTHER_APP, BULK_TAGS)
    value = bulk_value(i, b.type).hex()
    return Indicator(bulk_id(i), b.type, value, [descriptor], time=b.time, seq=b.seq + i - b.start)


def _owner(d: Descriptor) -> dict[str, str] | None:
    return {"id": d.owner} if d.owner is not None else None


def _top_fields(fields: str) -> set[str]:
    """The top-level names of a Graph `fields` list ("a,b{c,d}" -> {"a", "b"})."""
    names, depth, current = set(), 0, ""
    for ch in fields + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.add(current.strip())
            current = ""
        elif depth == 0:
            current += ch
    return names - {""}


def _encode_cursor(position: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode()


def _cursor(text: str) -> tuple[int, int]:
    t, _, seq = base64.urlsafe_b64decode(text.encode()).decode().partition(":")
    return int(t), int(seq)


def _ok(body: dict[str, object]) -> Answer:
    return Answer(200, json.dumps(body).encode())


def _error(status: int, code: int, kind: str, message: str) -> Answer:
    body = {"error": {"message": message, "type": kind, "code": code, "fbtrace_id": "AfakeTrace"}}
    return Answer(status, json.dumps(body).encode())


def _missing(object_id: str) -> Answer:
    return _error(
        400,
        100,
        "GraphMethodException",
        f"Unsupported get request. Object with ID '{object_id}' does not exist",
    )
