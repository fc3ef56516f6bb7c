"""Meta's ThreatExchange (the Graph API): a privacy group's /threat_updates, tailed.

Facts of the wire (python-threatexchange, exchanges/clients/fb_threatexchange/api.py and
exchanges/impl/fb_threatexchange_api.py): GET <base>/<privacy group>/threat_updates/ with
access_token, start_time, stop_time, limit and fields in the query; `data` holds
ThreatIndicators ordered by update time, each with id, indicator, type, last_updated,
should_delete and its descriptors (owner, tags, status, reactions); `paging.next` is the URL
of the next page. Feedback is a reaction POSTed to each descriptor of the indicator.

Checkpoint (JSON): {"groups": {"<privacy group>": {"update_time": <Unix s>, "next": <the
`paging.next` URL without its access_token, or null>}}}. update_time is the start_time of
the group's pass: once a pass is done, its stop_time less CLOCK_SLACK_S (the reference's
ThreatUpdatesDelta moves to its end time likewise). Mid-pass, `next` continues it; without
a usable `next` the pass starts again, which only re-reads: each record is an indicator's
whole state, and start_time is taken as inclusive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

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

API_VERSION = "v21.0"  # as python-threatexchange pins it (ThreatExchangeAPI._TE_BASE_URL)
ENVIRONMENTS: dict[str, str] = {"production": f"https://graph.facebook.com/{API_VERSION}"}
CREDENTIALS: tuple[str, ...] = ("access_token",)  # "<app id>|<app secret>"

# ThreatExchange's indicator types for the fingerprints hashmatch holds. The reference's
# video-only MD5/SHA-256 signal types take HASH_MD5/HASH_SHA256 only when tagged
# media_type_video; a file checksum is the same whatever the media, so all are taken here.
TE_TYPES: dict[str, SignalType] = {
    "HASH_PDQ": SignalType.PDQ,
    "HASH_MD5": SignalType.MD5,
    "HASH_VIDEO_MD5": SignalType.MD5,
    "HASH_SHA256": SignalType.SHA256,
    "HASH_VIDEO_SHA256": SignalType.SHA256,
}
FIELDS = (
    "id,indicator,type,last_updated,should_delete,descriptors{id,owner{id},tags,status,reactions}"
)
# The next pass starts this long before the last one's stop_time (our clock): what a server
# clock behind ours, or an index slow to show an update, dates before stop_time but served
# only after the pass is read then. The price: the last minute's updates come twice.
CLOCK_SLACK_S = 60
REACTIONS = {Verdict.FALSE_POSITIVE: "DISAGREE_WITH_TAGS", Verdict.TRUE_POSITIVE: "HELPFUL"}


_DEFAULT_HTTP = HttpSettings()


class _Malformed(Exception):
    """One upstream record that cannot be read: skipped and counted."""


@dataclass(frozen=True)
class _GroupState:
    update_time: int = 0  # the start_time of the group's current (or next) pass
    next: str | None = None  # mid-pagination: the next page's URL, without the token


class ThreatExchangeClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: Credentials,
        settings: HttpSettings = _DEFAULT_HTTP,
        *,
        privacy_groups: Sequence[str],
        page_size: int = 1000,
    ) -> None:
        if len(credentials.values) != 1 or not credentials.values[0]:
            raise BadParameter("threatexchange takes one credential: access_token")
        groups = [str(g).strip() for g in privacy_groups]
        if not groups or not all(g.isdigit() for g in groups):
            # Graph ids are numbers; anything else would become a path of its own.
            raise BadParameter("threatexchange privacy groups: one or more numeric ids")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.privacy_groups = tuple(dict.fromkeys(groups))
        self.page_size = page_size
        self.skipped = 0
        self._token = credentials.values[0]
        app_id = self._token.partition("|")[0]
        self._app_id = app_id if app_id.isdigit() else None
        self._http = Http(settings, throttled=_graph_throttled)

    def __repr__(self) -> str:
        return f"ThreatExchangeClient({self.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- fetch ------------------------------------------------------------------------------
    def fetch(self, checkpoint: str | None) -> Iterator[Page]:
        state = self._load(checkpoint)
        for group in self.privacy_groups:
            yield from self._fetch_group(group, state)

    def _fetch_group(self, group: str, state: dict[str, _GroupState]) -> Iterator[Page]:
        url, params = self._first_request(group, state[group])
        while True:
            items, next_url = self._updates_page(self._get_json(url, params))
            events, newest = self._events(group, items)
            before = state[group]
            watermark = before.update_time
            if next_url is None:  # the pass is done: all dated before its stop_time came
                end = _stop_time(params) or newest or 0
                watermark = max(watermark, end - CLOCK_SLACK_S)
            state[group] = _GroupState(watermark, _without_token(next_url) if next_url else None)
            if events or state[group] != before:
                yield Page(events, self._dump(state), float(newest) if newest else None)
            if next_url is None:
                return
            url, params = _split(state[group].next or "")
            params.append(("access_token", self._token))

    def _first_request(self, group: str, gs: _GroupState) -> tuple[str, list[tuple[str, str]]]:
        if gs.next and self._ours(gs.next):
            url, params = _split(gs.next)
        else:  # a new pass (or a cursor of another base URL: start again at the watermark)
            url = f"{self.base_url}/{group}/threat_updates/"
            params = [("fields", FIELDS), ("limit", str(self.page_size))]
            if gs.update_time:
                params.append(("start_time", str(gs.update_time)))
            # Bounds the pass: what changes while it runs comes in the next one.
            params.append(("stop_time", str(int(time.time()))))
        params.append(("access_token", self._token))
        return url, params

    def _updates_page(self, body: object) -> tuple[list[object], str | None]:
        if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
            raise UpstreamError("threatexchange: unreadable threat_updates page", retry=True)
        paging = body.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        if next_url is not None and not (isinstance(next_url, str) and self._ours(next_url)):
            # Following it would hand the access token to whoever it names.
            raise UpstreamError("threatexchange: paging.next is not of this API", retry=False)
        data: list[object] = body.get("data", [])
        return data, next_url or None

    def _ours(self, url: str) -> bool:
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (
            (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)
            and theirs.path.startswith(mine.path + "/")
            and ".." not in theirs.path
        )

    def _events(
        self, group: str, items: list[object]
    ) -> tuple[list[NewEntry | Tombstone], int | None]:
        events: list[NewEntry | Tombstone] = []
        newest: int | None = None
        for item in items:
            try:
                record, updated = self._record(group, item)
            except _Malformed:
                self.skipped += 1
                continue
            events.extend(record)
            newest = updated if newest is None else max(newest, updated)
        return events, newest

    def _record(self, group: str, item: object) -> tuple[list[NewEntry | Tombstone], int]:
        """An indicator as it is now, and its update time."""
        if not isinstance(item, dict):
            raise _Malformed
        indicator_id, te_type = _graph_id(item.get("id")), item.get("type")
        updated, should_delete = _unix_time(item.get("last_updated")), item.get("should_delete")
        if indicator_id is None or not isinstance(te_type, str) or updated is None:
            raise _Malformed
        if not isinstance(should_delete, bool | None):
            raise _Malformed
        signal_type = TE_TYPES.get(te_type)
        if signal_type is None:
            return [], updated  # a type hashmatch does not hold (URLs, TMK, ...)
        upstream_id = f"{group}/{indicator_id}"
        source = source_of(self.name, group)
        # A record without descriptors is a deletion too (python-threatexchange, #834).
        if should_delete or "descriptors" not in item:
            return record_events(upstream_id, (), label=None, source=source), updated
        value = _hex_value(signal_type, item.get("indicator"))
        opinions = _positive_descriptors(item["descriptors"])
        if not opinions:  # every visible opinion calls it benign: not a hash to block
            return record_events(upstream_id, (), label=None, source=source), updated
        owner = next((o for _, o, _ in opinions if o), None)
        label = _label({tag for _, _, tags in opinions for tag in tags})
        events = record_events(
            upstream_id,
            [(signal_type, value)],
            label=label,
            source=source_of(self.name, owner or group),
        )
        return events, updated

    # -- checkpoint -------------------------------------------------------------------------
    def _load(self, checkpoint: str | None) -> dict[str, _GroupState]:
        state = {g: _GroupState() for g in self.privacy_groups}
        if not checkpoint:
            return state
        try:
            groups = json.loads(checkpoint)["groups"]
            for g in self.privacy_groups:
                saved = groups.get(g) or {}
                nxt = saved.get("next")
                state[g] = _GroupState(int(saved.get("update_time") or 0), nxt or None)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise UpstreamError("threatexchange: unreadable checkpoint", retry=False) from None
        return state

    def _dump(self, state: dict[str, _GroupState]) -> str:
        groups = {g: {"update_time": s.update_time, "next": s.next} for g, s in state.items()}
        return json.dumps({"groups": groups}, sort_keys=True)

    # -- feedback ---------------------------------------------------------------------------
    def send_feedback(self, items: Sequence[UpstreamFeedback]) -> None:
        """Each verdict becomes a reaction on every descriptor of the indicator but our
        own app's (the reference's react_to_threat_descriptor). Reactions are sets per
        app upstream, so a batch sent again changes nothing."""
        wanted = dict.fromkeys(
            (indicator, REACTIONS[f.verdict])
            for f in items
            if (indicator := f.upstream_id.rsplit("/", 1)[-1]).isdigit()
        )
        descriptors: dict[str, list[str]] = {}
        for indicator, reaction in wanted:
            if indicator not in descriptors:
                descriptors[indicator] = self._descriptors_of(indicator)
            for descriptor_id in descriptors[indicator]:
                self._react(descriptor_id, reaction)

    def _descriptors_of(self, indicator: str) -> list[str]:
        body = self._get_json(
            f"{self.base_url}/{indicator}/",
            [("fields", "descriptors{id,owner{id}}"), ("access_token", self._token)],
        )
        found = body.get("descriptors") if isinstance(body, dict) else None
        data = found.get("data") if isinstance(found, dict) else []
        ids = []
        for d in data if isinstance(data, list) else []:
            descriptor_id = _graph_id(d.get("id")) if isinstance(d, dict) else None
            if descriptor_id is not None and _owner(d) != self._app_id:
                ids.append(descriptor_id)
        return ids

    def _react(self, descriptor_id: str, reaction: str) -> None:
        response = self._http.request(
            "POST",
            f"{self.base_url}/{descriptor_id}/",
            params=[("access_token", self._token)],
            data={"reactions": reaction},
        )
        body = _json(response.content)
        if not isinstance(body, dict) or not body.get("success"):
            raise UpstreamError("threatexchange: a reaction was not taken", retry=True)

    def _get_json(self, url: str, params: list[tuple[str, str]]) -> object:
        return _json(self._http.request("GET", url, params=params).content)


# Graph's rate-limit errors: application, user, page and custom limits (a 400 or 403 with
# one of these codes; https://developers.facebook.com/docs/graph-api/overview/rate-limiting).
GRAPH_THROTTLED = frozenset({4, 17, 32, 613, 80001})


def _graph_throttled(response: httpx.Response) -> bool:
    try:
        error = json.loads(response.content).get("error", {})
        return isinstance(error, dict) and error.get("code") in GRAPH_THROTTLED
    except (ValueError, AttributeError):
        return False


# -- reading records --------------------------------------------------------------------------
def _json(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:  # UnicodeDecodeError is one
        raise UpstreamError("threatexchange: a response is not JSON", retry=True) from None


def _graph_id(value: object) -> str | None:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if text.isdigit() and len(text) <= 40 else None


def _unix_time(value: object) -> int | None:
    """threat_updates gives Unix seconds; Graph's ISO 8601 form is read too."""
    if isinstance(value, int) and not isinstance(value, bool):
        return plausible_time(value)
    if not isinstance(value, str):
        return None
    if value.isdigit() and len(value) <= 12:
        return plausible_time(int(value))
    try:
        return plausible_time(int(datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()))
    except (ValueError, OverflowError):
        return None


def _hex_value(signal_type: SignalType, indicator: object) -> bytes:
    if not isinstance(indicator, str):
        raise _Malformed
    try:
        return signal_type.parse_hex(indicator)
    except BadParameter:
        raise _Malformed from None


def _owner(descriptor: dict[str, object]) -> str | None:
    owner = descriptor.get("owner")
    return _graph_id(owner.get("id")) if isinstance(owner, dict) else None


def _tags(descriptor: dict[str, object]) -> set[str]:
    """Tags come as a list of texts, or as Graph's edge {"data": [{"text": ...}]}."""
    tags = descriptor.get("tags")
    if isinstance(tags, dict):
        tags = [t.get("text") for t in tags.get("data") or [] if isinstance(t, dict)]
    if not isinstance(tags, list):
        return set()
    return {t for t in tags if isinstance(t, str) and t}


def _positive_descriptors(descriptors: object) -> list[tuple[str, str | None, set[str]]]:
    """(descriptor id, owner, tags) of the descriptors that do not call the indicator
    benign (status NON_MALICIOUS), oldest id first."""
    data = descriptors.get("data") if isinstance(descriptors, dict) else None
    if not isinstance(data, list):
        raise _Malformed
    found = []
    for d in data:
        if not isinstance(d, dict) or (descriptor_id := _graph_id(d.get("id"))) is None:
            raise _Malformed
        if d.get("status") != "NON_MALICIOUS":
            found.append((descriptor_id, _owner(d), _tags(d)))
    return sorted(found, key=lambda o: (len(o[0]), o[0]))


def _label(tags: set[str]) -> str | None:
    """The tags, sorted, comma-joined; whole tags only, as many as a label holds."""
    label = ""
    for tag in sorted(tags):
        joined = f"{label},{tag}" if label else tag
        if len(joined) > MAX_TEXT:
            break
        label = joined
    return label or None


# -- URLs -------------------------------------------------------------------------------------
def _stop_time(params: list[tuple[str, str]]) -> int:
    value = dict(params).get("stop_time", "")
    return int(value) if value.isdigit() else 0


def _split(url: str) -> tuple[str, list[tuple[str, str]]]:
    """A URL's path part and its query as pairs (httpx replaces a URL's query by params)."""
    parts = urlsplit(url)
    base = parts._replace(query="", fragment="").geturl()
    return base, parse_qsl(parts.query, keep_blank_values=True)


def _without_token(url: str) -> str:
    """A paging URL as a checkpoint may hold it: credentials never go to the database."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "access_token"]
    return parts._replace(query=urlencode(kept), fragment="").geturl()
