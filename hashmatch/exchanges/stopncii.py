"""StopNCII.org's hash API: the hashes people submitted, read as a stream of snapshots, and
platforms' (CSPs') feedback on them.

Facts of the wire (python-threatexchange, exchanges/clients/stopncii/api.py with its
tests/test_api.py, and exchanges/impl/stop_ncii_api.py): REST at <base> (production
https://api.stopncii.org/v1, the only environment the reference names). Every call carries
`Ocp-Apim-Subscription-Key: <subscription key>` and `x-functions-key: <that endpoint's
function key>` (FetchHashes and SubmitFeedback have a key each).
GET <base>/FetchHashes?startTimestamp=<Unix s>&pageSize=<n>[&nextPageToken=<t>] answers JSON
{count, nextPageToken, nextSetTimestamp, hasMoreRecords, hashRecords: [{lastModtimestamp,
signalType, hashValue, hashStatus, caseNumbers: {case: status}, CSPFeedbacks: [...]}]}. A
record is the whole current state of (signalType, hashValue): a later one replaces it. A run
starts at a timestamp (the reference's first: 10) and follows nextPageToken, with the same
startTimestamp, while hasMoreRecords; the reference resumes a later run from the last
response's nextSetTimestamp. POST <base>/SubmitFeedback with {count, hashFeedbacks:
[{hashValue, feedbackValue, tags}]}.

Checkpoint (JSON):
  {"start": S}                        the next run starts at S
  {"start": S, "token": T, "at": A}   inside the run from S: T is the next page's token,
                                      given at A (Unix s, this client's clock)
Page tokens do not last ("not valid over long periods of time", says the reference): one
older than token_ttl_s, or one upstream refuses with a 400, restarts its run at S. The
re-read is idempotent, every record being its hash's whole state.

A record of a signal type hashmatch holds (ImagePDQ -> PDQ, VideoMD5 -> MD5; VideoTMK, Text
and URL are passed over) becomes one entry: upstream id the hash in lowercase hex, label the
hash's aggregate case status (Received or Active: StopNCII carries no category, everything
in it is NCII), source the exchange's name (records do not say who submitted them; the
CSPFeedbacks are other platforms' verdicts, not a submitter). Withdrawn and Deleted hashes
are deletions. A record is malformed (skipped, counted) without a known hashStatus, an
integer lastModtimestamp or a hashValue of its type's hex; CSPFeedbacks are not read, so an
unknown feedbackValue (the reference drops such records) costs nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from hashmatch.banks.model import NewEntry, SignalType, Tombstone
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

ENVIRONMENTS: dict[str, str] = {"production": "https://api.stopncii.org/v1"}
CREDENTIALS: tuple[str, ...] = ("subscription_key", "fetch_function_key", "feedback_function_key")
REQUIRED_CREDENTIALS = 2  # the feedback key only with --feedback-upstream

FETCH, FEEDBACK = "FetchHashes", "SubmitFeedback"  # the endpoints, each with its function key
SIGNAL_TYPES: dict[str, SignalType] = {"ImagePDQ": SignalType.PDQ, "VideoMD5": SignalType.MD5}
LIVE = frozenset({"Received", "Active"})
GONE = frozenset({"Withdrawn", "Deleted"})
# The CSP feedback values (StopNCIICSPFeedbackValue): Blocked is "reviewed, NCII"; NotBlocked
# "reviewed, not shown to be NCII", the nearest it has to a false positive.
FEEDBACK_VALUES: dict[Verdict, str] = {
    Verdict.TRUE_POSITIVE: "Blocked",
    Verdict.FALSE_POSITIVE: "NotBlocked",
}
DEFAULT_START = 10  # the reference's first startTimestamp
PAGE_SIZE = 800  # the reference's pageSize
TOKEN_TTL_S = 3600
FEEDBACK_BATCH = 500  # hashFeedbacks per POST

_DEFAULT_HTTP = HttpSettings()


class _Malformed(Exception):
    """One upstream record that cannot be read: skipped and counted."""


@dataclass(frozen=True)
class _Cursor:
    start: int
    token: str | None = None
    at: int = 0

    def to_json(self) -> str:
        if self.token is None:
            return json.dumps({"start": self.start})
        return json.dumps({"start": self.start, "token": self.token, "at": self.at})


@dataclass(frozen=True)
class _Response:
    events: list[NewEntry | Tombstone]
    newest: int | None  # the newest lastModtimestamp of the records read
    skipped: int
    more: bool
    token: str | None
    next_set: int


class StopnciiClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        credentials: Credentials,
        settings: HttpSettings = _DEFAULT_HTTP,
        *,
        page_size: int = PAGE_SIZE,
        token_ttl_s: int = TOKEN_TTL_S,
        feedback_tags: tuple[str, ...] = (),  # sent with every verdict
        clock: Callable[[], float] = time.time,
    ) -> None:
        given = len(credentials.values)
        if not REQUIRED_CREDENTIALS <= given <= len(CREDENTIALS) or not all(credentials.values):
            raise BadParameter(
                f"stopncii takes these credentials: {', '.join(CREDENTIALS)} (the last only"
                " to send feedback)"
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.page_size = max(1, page_size)
        self.token_ttl_s = token_ttl_s
        self.feedback_tags = feedback_tags
        self.skipped = 0
        self._clock = clock
        subscription, fetch_key, *feedback_key = credentials.values
        self._keys = {FETCH: fetch_key, FEEDBACK: feedback_key[0] if feedback_key else ""}
        self._subscription = subscription
        self._http = Http(settings)

    def __repr__(self) -> str:
        return f"StopnciiClient({self.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # -- fetch ------------------------------------------------------------------------------
    def fetch(self, checkpoint: str | None) -> Iterator[Page]:
        cursor = _load(checkpoint)
        if cursor.token is not None and self._clock() - cursor.at > self.token_ttl_s:
            cursor = _Cursor(cursor.start)
        restarted = False
        while True:
            try:
                response = self._fetch_hashes(cursor)
            except UpstreamError as exc:
                # A token upstream no longer takes: the run again from its start, once.
                if cursor.token is None or exc.status != 400 or restarted:
                    raise
                restarted, cursor = True, _Cursor(cursor.start)
                continue
            self.skipped += response.skipped
            after = self._after(cursor, response)
            yield Page(response.events, after.to_json(), response.newest)
            if after.token is None:
                return
            cursor = after

    def _after(self, cursor: _Cursor, response: _Response) -> _Cursor:
        if response.more:
            if not response.token or response.token == cursor.token:
                raise UpstreamError("stopncii: FetchHashes: paging does not advance", retry=True)
            return _Cursor(cursor.start, response.token, int(self._clock()))
        # Never back: records before the run's start were read by an earlier run, and a
        # hash that changes gets a newer lastModtimestamp.
        return _Cursor(max(cursor.start, response.next_set))

    def _fetch_hashes(self, cursor: _Cursor) -> _Response:
        params: dict[str, str | int] = {"startTimestamp": cursor.start, "pageSize": self.page_size}
        if cursor.token is not None:
            params["nextPageToken"] = cursor.token
        response = self._call("GET", FETCH, params=params)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise UpstreamError("stopncii: FetchHashes: not JSON", retry=True) from None
        return self._response(data)

    def _response(self, data: object) -> _Response:
        if not isinstance(data, dict) or not isinstance(data.get("hashRecords"), list):
            raise UpstreamError("stopncii: FetchHashes: no hashRecords", retry=True)
        more, token = data.get("hasMoreRecords"), data.get("nextPageToken")
        next_set = _timestamp(data.get("nextSetTimestamp"))
        if not isinstance(more, bool) or next_set is None:
            raise UpstreamError("stopncii: FetchHashes: no paging fields", retry=True)
        if token is not None and not isinstance(token, str):
            raise UpstreamError("stopncii: FetchHashes: a nextPageToken not text", retry=True)
        events: list[NewEntry | Tombstone] = []
        times: list[int] = []
        skipped = 0
        for item in data["hashRecords"]:
            try:
                found = self._record(item)
            except _Malformed:
                skipped += 1
                continue
            if found is not None:
                events.extend(found[0])
                times.append(found[1])
        return _Response(events, max(times, default=None), skipped, more, token, next_set)

    def _record(self, item: object) -> tuple[list[NewEntry | Tombstone], int] | None:
        """The record's events and lastModtimestamp; None for a signal type not held."""
        if not isinstance(item, dict) or not isinstance(item.get("signalType"), str):
            raise _Malformed
        signal_type = SIGNAL_TYPES.get(item["signalType"])
        if signal_type is None:
            return None
        updated = _timestamp(item.get("lastModtimestamp"))
        status = item.get("hashStatus")
        hash_value = item.get("hashValue")
        if updated is None or status not in LIVE | GONE or not isinstance(hash_value, str):
            raise _Malformed
        try:
            value = signal_type.parse_hex(hash_value)
        except BadParameter:
            raise _Malformed from None
        prints = [(signal_type, value)] if status in LIVE else []
        label = str(status) if status in LIVE else None
        source = source_of(self.name, None)
        return record_events(value.hex(), prints, label=label, source=source), updated

    # -- feedback ---------------------------------------------------------------------------
    def send_feedback(self, items: Sequence[UpstreamFeedback]) -> None:
        """Each verdict is one hashFeedbacks item of the hash: Blocked for a true positive,
        NotBlocked for a false positive (feedback states the CSP's opinion, so a batch sent
        again changes nothing). Of one hash's verdicts the last counts. Items of a type
        StopNCII does not carry (SHA-256) are passed over."""
        if not self._keys[FEEDBACK]:
            raise UpstreamError(
                "stopncii: no SubmitFeedback function key (the third --credentials-env)",
                retry=False,
            )
        wanted: dict[str, str] = {}
        for f in items:
            if f.signal_type in SIGNAL_TYPES.values() and len(f.value) == f.signal_type.nbytes:
                wanted.pop(f.value.hex(), None)  # re-inserted: the last verdict's place
                wanted[f.value.hex()] = FEEDBACK_VALUES[f.verdict]
        pairs = list(wanted.items())
        for i in range(0, len(pairs), FEEDBACK_BATCH):
            batch = pairs[i : i + FEEDBACK_BATCH]
            feedbacks = [
                {"hashValue": h, "feedbackValue": v, "tags": list(self.feedback_tags)}
                for h, v in batch
            ]
            self._call("POST", FEEDBACK, json={"count": len(batch), "hashFeedbacks": feedbacks})

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> httpx.Response:
        headers = {
            "Ocp-Apim-Subscription-Key": self._subscription,
            "x-functions-key": self._keys[endpoint],
        }
        try:
            return self._http.request(
                method, f"{self.base_url}/{endpoint}", headers=headers, **kwargs
            )
        except UpstreamError as exc:
            if exc.status in (401, 403):
                raise UpstreamError(
                    f"stopncii: {endpoint}: HTTP {exc.status} (the subscription key or the"
                    f" {endpoint} function key was refused)",
                    retry=False,
                    status=exc.status,
                ) from None
            raise


def _timestamp(value: object) -> int | None:
    """A Unix time in seconds as StopNCII sends it (an integer)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return plausible_time(value)


def _load(checkpoint: str | None) -> _Cursor:
    if not checkpoint:
        return _Cursor(DEFAULT_START)
    try:
        data = json.loads(checkpoint)
        start = _timestamp(data["start"])
        token = data.get("token")
        if start is None or not (token is None or isinstance(token, str)):
            raise ValueError
        return _Cursor(start, token or None, int(data.get("at", 0)) if token else 0)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UpstreamError("stopncii: unreadable checkpoint", retry=False) from None
