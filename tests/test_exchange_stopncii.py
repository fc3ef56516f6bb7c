"""StopnciiClient against the fake StopNCII hash API on loopback: runs paged by token,
resume from every checkpoint, status changes and deletions, stale tokens, retries, auth,
malformed records, feedback."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hashmatch.banks.model import NewEntry, SignalType
from hashmatch.errors import BadParameter
from hashmatch.exchanges.http import HttpSettings
from hashmatch.exchanges.model import (
    Credentials,
    UpstreamError,
    UpstreamFeedback,
    Verdict,
    external_id,
    upstream_id_of,
)
from hashmatch.exchanges.stopncii import (
    CREDENTIALS,
    DEFAULT_START,
    ENVIRONMENTS,
    TOKEN_TTL_S,
    StopnciiClient,
)
from tests.exchange_helpers import FAST, Bank, Clock, apply
from tests.fake_stopncii import (
    FEEDBACK_KEY,
    FEEDBACK_PATH,
    FETCH_KEY,
    FETCH_PATH,
    SUBSCRIPTION_KEY,
    FakeStopncii,
    bulk_hash,
    stopncii_record,
)

T0 = 1_700_000_000  # upstream timestamps in these tests
KEYS = (SUBSCRIPTION_KEY, FETCH_KEY, FEEDBACK_KEY)
TYPES = {"ImagePDQ": SignalType.PDQ, "VideoMD5": SignalType.MD5}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStopncii]:
    with FakeStopncii() as f:
        assert isinstance(f, FakeStopncii)
        yield f


@pytest.fixture
def fake(server: FakeStopncii) -> FakeStopncii:
    server.reset()
    return server


_open: list[StopnciiClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def client(
    fake: FakeStopncii, keys: tuple[str, ...] = KEYS, page_size: int = 7, **kw: Any
) -> StopnciiClient:
    c = StopnciiClient(
        "stopncii", fake.base_url, Credentials(keys), FAST, page_size=page_size, **kw
    )
    _open.append(c)
    return c


def fill(fake: FakeStopncii, n: int, *, ts: int = T0) -> None:
    """n hashes one second apart (some sharing a second): PDQ images and MD5 videos,
    Received and Active, and hashes of types hashmatch does not hold."""
    for i in range(n):
        if i % 9 == 4:
            fake.add(secrets.token_hex(32), ts + i, signal_type="VideoTMK")
        elif i % 3 == 0:
            fake.add(secrets.token_bytes(16), ts + i - i % 2, signal_type="VideoMD5")
        else:
            status = ("Received", "Active")[i % 2]
            fake.add(secrets.token_bytes(32), ts + i - i % 2, status=status)


def expected(fake: FakeStopncii) -> Bank:
    bank: Bank = {}
    for (signal_type, hash_value), h in fake.live().items():
        st = TYPES.get(signal_type)
        if st is not None:
            ext = external_id(hash_value.lower(), st)
            bank[ext] = NewEntry(st, bytes.fromhex(hash_value), h.status, ext, "stopncii")
    return bank


def fetches(fake: FakeStopncii) -> int:
    return sum(p == FETCH_PATH for p in fake.paths())


# -- the constants the registry reads -----------------------------------------------------------
def test_environments_and_credentials() -> None:
    assert ENVIRONMENTS == {"production": "https://api.stopncii.org/v1"}
    assert CREDENTIALS == ("subscription_key", "fetch_function_key", "feedback_function_key")
    with pytest.raises(BadParameter):
        StopnciiClient("x", "https://example.org", Credentials(("sub",)))
    fetch_only = StopnciiClient("x", "https://example.org", Credentials(("sub", "fetch")))
    with pytest.raises(UpstreamError, match="no SubmitFeedback") as no_key:
        fetch_only.send_feedback(
            [UpstreamFeedback("ab" * 32, SignalType.PDQ, b"\xab" * 32, Verdict.FALSE_POSITIVE)]
        )
    assert not no_key.value.retry
    fetch_only.close()
    with pytest.raises(BadParameter):
        StopnciiClient("x", "https://example.org", Credentials(("sub", "", "fb")))
    c = StopnciiClient("x", "https://example.org", Credentials(KEYS))
    assert not any(k in repr(c) for k in KEYS)
    c.close()


# -- fetching ---------------------------------------------------------------------------------
def test_full_fetch_over_several_pages_equals_upstream(fake: FakeStopncii) -> None:
    fill(fake, 40)
    c = client(fake)
    pages = list(c.fetch(None))
    bank = apply({}, pages)
    assert bank == expected(fake) and len(bank) > 25
    assert c.skipped == 0  # VideoTMK is passed over, not counted
    assert len(pages) == 6 and fetches(fake) == 6  # 40 records, 7 a page
    labels = {e.label for e in bank.values()}
    assert labels == {"Received", "Active"}
    assert {e.signal_type for e in bank.values()} == {SignalType.PDQ, SignalType.MD5}
    # The wire: the run's start on every request, the token from the second on.
    first, second = [r for r in fake.requests if r.path == FETCH_PATH][:2]
    assert first.query == {"startTimestamp": [str(DEFAULT_START)], "pageSize": ["7"]}
    assert second.query["startTimestamp"] == [str(DEFAULT_START)]
    assert second.query["nextPageToken"] == [json.loads(pages[0].checkpoint)["token"]]
    assert first.headers["Ocp-Apim-Subscription-Key"] == SUBSCRIPTION_KEY
    assert first.headers["x-functions-key"] == FETCH_KEY
    # Mid-run checkpoints hold the run's start and the token; the last the next run's start.
    mid = json.loads(pages[0].checkpoint)
    assert mid["start"] == DEFAULT_START and mid["token"] and mid["at"] > 0
    newest = max(h.ts for h in fake.live().values())
    assert json.loads(pages[-1].checkpoint) == {"start": newest}
    assert pages[0].upstream_time == T0 + 6  # the newest of its seven records


def test_an_empty_upstream_gives_one_empty_page(fake: FakeStopncii) -> None:
    pages = list(client(fake).fetch(None))
    assert [(p.events, json.loads(p.checkpoint)) for p in pages] == [([], {"start": DEFAULT_START})]


def test_resume_from_every_checkpoint_equals_one_fetch(fake: FakeStopncii) -> None:
    fill(fake, 40)
    whole = list(client(fake).fetch(None))
    want = apply({}, whole)
    for k, page in enumerate(whole):
        resumed = list(client(fake).fetch(page.checkpoint))
        assert apply(apply({}, whole[: k + 1]), resumed) == want
        if k < len(whole) - 1:  # it continues with exactly the pages after k
            assert [p.events for p in resumed] == [p.events for p in whole[k + 1 :]]
        else:  # the next run: only the newest second again, which changes nothing
            assert len(resumed) == 1 and 0 < len(resumed[0].events) < 10


def test_a_killed_fetch_resumes_from_its_last_committed_page(fake: FakeStopncii) -> None:
    fill(fake, 30)
    bank: Bank = {}
    checkpoint = None
    runs = 0
    while checkpoint is None or "token" in json.loads(checkpoint):
        runs += 1  # each run commits at most two pages, then "dies"
        pages = list(itertools.islice(client(fake).fetch(checkpoint), 2))
        apply(bank, pages)
        checkpoint = pages[-1].checkpoint
    assert runs == 3 and bank == expected(fake)  # 5 pages, two a run


def test_update_and_deletion_upstream_arrive(fake: FakeStopncii) -> None:
    fill(fake, 20)
    c = client(fake)
    bank = apply({}, list(c.fetch(None)))
    checkpoint = list(c.fetch(None))[-1].checkpoint
    pdqs = [h for (st, _), h in sorted(fake.live().items()) if st == "ImagePDQ"]
    received = next(h for h in pdqs if h.status == "Received")
    withdrawn, deleted = [h for h in pdqs if h.status == "Active"][:2]
    md5 = next(h for (st, _), h in fake.live().items() if st == "VideoMD5")
    fake.update(received.hash_value, T0 + 100, status="Active")
    fake.withdraw(withdrawn.hash_value, T0 + 101)
    fake.delete(md5.hash_value, T0 + 102, signal_type="VideoMD5")
    fake.delete(deleted.hash_value, T0 + 102)
    fresh = secrets.token_bytes(32)
    fake.add(fresh, T0 + 103)
    pages = list(c.fetch(checkpoint))
    changed = {h.hash_value for h in (received, withdrawn, deleted, md5)} | {fresh.hex()}
    events = [e for p in pages for e in p.events if upstream_id_of(e.external_id or "") in changed]
    assert len(events) == 5 * len(SignalType) + 2  # tombstones of each, two are live
    assert {upstream_id_of(e.external_id or "") for e in events[-4:]} == {fresh.hex()}
    apply(bank, pages)
    assert bank == expected(fake)
    assert bank[external_id(received.hash_value, SignalType.PDQ)].label == "Active"
    assert external_id(withdrawn.hash_value, SignalType.PDQ) not in bank
    assert external_id(deleted.hash_value, SignalType.PDQ) not in bank
    assert external_id(md5.hash_value, SignalType.MD5) not in bank
    assert external_id(fresh.hex(), SignalType.PDQ) in bank
    # A withdrawn hash submitted again comes back.
    fake.update(withdrawn.hash_value, T0 + 200, status="Received")
    apply(bank, list(c.fetch(pages[-1].checkpoint)))
    assert bank[external_id(withdrawn.hash_value, SignalType.PDQ)].label == "Received"
    assert bank == expected(fake)


def test_a_hash_changed_mid_run_arrives_in_its_new_state(fake: FakeStopncii) -> None:
    fill(fake, 30)
    first = next(iter(sorted(fake.live().values(), key=lambda h: h.key)))
    it = client(fake).fetch(None)
    bank = apply({}, [next(it)])
    fake.update(first.hash_value, T0 + 500, signal_type=first.signal_type, status="Deleted")
    apply(bank, list(it))  # upstream's order puts the change at the run's end
    assert bank == expected(fake)
    assert external_id(first.hash_value, TYPES[first.signal_type]) not in bank


def test_a_stale_token_restarts_its_run(fake: FakeStopncii) -> None:
    fill(fake, 30)
    clock = Clock(time.time())
    whole = list(client(fake, clock=clock).fetch(None))
    want = apply({}, whole)
    clock.now += TOKEN_TTL_S + 1
    before = fetches(fake)
    resumed = list(client(fake, clock=clock).fetch(whole[1].checkpoint))
    assert fetches(fake) - before == len(whole)  # the run read again from its start
    assert "nextPageToken" not in fake.requests[before].query
    assert apply(apply({}, whole[:2]), resumed) == want


def test_a_token_upstream_refuses_restarts_its_run_once(fake: FakeStopncii) -> None:
    fill(fake, 30)
    whole = list(client(fake).fetch(None))
    fake.expire_tokens()
    resumed = list(client(fake).fetch(whole[1].checkpoint))
    assert apply(apply({}, whole[:2]), resumed) == apply({}, whole)
    # Refused again after the restart: an error, not a loop.
    it = client(fake).fetch(whole[1].checkpoint)
    next(it)  # the restarted run's first page
    fake.expire_tokens()
    with pytest.raises(UpstreamError) as exc:
        list(it)
    assert exc.value.status == 400 and not exc.value.retry


def test_the_checkpoint_never_goes_back(fake: FakeStopncii) -> None:
    fake.add(secrets.token_bytes(32), T0)
    pages = list(client(fake).fetch(json.dumps({"start": T0 + 50})))
    assert json.loads(pages[-1].checkpoint) == {"start": T0 + 50}


def test_bulk_records_page_on_demand(fake: FakeStopncii) -> None:
    started = time.monotonic()
    fake.add_many(1_000_000, ts=T0)
    pages = list(itertools.islice(client(fake, page_size=1000).fetch(None), 3))
    assert time.monotonic() - started < 2.0
    entries = [e for p in pages for e in p.events if isinstance(e, NewEntry)]
    assert len(entries) == 3000
    assert entries[0].value == bulk_hash(0) and entries[2999].value == bulk_hash(2999)
    assert entries[5].label == "Active"
    assert stopncii_record(5, T0 + 5).hash_value == bulk_hash(5).hex()
    # A token deep in the batch resumes there.
    checkpoint = json.loads(pages[-1].checkpoint)
    page = next(client(fake, page_size=1000).fetch(json.dumps(checkpoint)))
    first = next(e for e in page.events if isinstance(e, NewEntry))
    assert first.value == bulk_hash(3000)


def test_bulk_records_can_change(fake: FakeStopncii) -> None:
    fake.add_many(20, ts=T0)
    fake.add_many(10, 100, ts=T0 + 5, signal_type="VideoMD5")
    fake.delete(bulk_hash(3), T0 + 50)
    fake.update(bulk_hash(104, "VideoMD5"), T0 + 51, signal_type="VideoMD5", status="Received")
    bank = apply({}, list(client(fake).fetch(None)))
    assert bank == expected(fake) and len(bank) == 29
    assert bank[external_id(bulk_hash(104, "VideoMD5").hex(), SignalType.MD5)].label == "Received"


# -- failures ---------------------------------------------------------------------------------
def test_429_with_retry_after_and_500_are_retried(fake: FakeStopncii) -> None:
    fill(fake, 20)
    fake.retry_after_s = 0.1
    fake.fail_next[FETCH_PATH] = [429, 500, 429]
    c = StopnciiClient(
        "stopncii",
        fake.base_url,
        Credentials(KEYS),
        HttpSettings(backoff_s=0.01, backoff_max_s=1.0),
        page_size=7,
    )
    _open.append(c)
    started = time.monotonic()
    bank = apply({}, list(c.fetch(None)))
    assert bank == expected(fake)
    assert time.monotonic() - started >= 0.2  # two Retry-After waits
    assert fetches(fake) == 3 + 3  # three refused, then three pages


def test_persistent_5xx_raises_retryable(fake: FakeStopncii) -> None:
    fake.fail_next[FETCH_PATH] = [500] * 10
    with pytest.raises(UpstreamError) as exc:
        list(client(fake).fetch(None))
    assert exc.value.retry and exc.value.status == 500


@pytest.mark.parametrize("wrong", [0, 1])
def test_wrong_credentials_raise_without_the_secret(fake: FakeStopncii, wrong: int) -> None:
    keys = list(KEYS)
    keys[wrong] = "wrong-" + secrets.token_hex(8)
    with pytest.raises(UpstreamError) as exc:
        list(client(fake, tuple(keys)).fetch(None))
    assert exc.value.status == 401 and not exc.value.retry
    assert fetches(fake) == 1  # not retried
    text = f"{exc.value} {exc.value!r}"
    assert "FetchHashes" in text
    assert not any(k in text for k in (*KEYS, keys[wrong]))


def test_malformed_records_are_skipped_and_counted(fake: FakeStopncii) -> None:
    fill(fake, 10)
    bad: list[object] = [
        "not a record",
        {"signalType": "ImagePDQ", "hashValue": "zz" * 32, "hashStatus": "Active",
         "lastModtimestamp": T0},
        {"signalType": "ImagePDQ", "hashValue": "ab" * 31, "hashStatus": "Active",
         "lastModtimestamp": T0},
        {"signalType": "VideoMD5", "hashValue": "ab" * 16, "hashStatus": "Maybe",
         "lastModtimestamp": T0},
        {"signalType": "ImagePDQ", "hashValue": "ab" * 32, "hashStatus": "Active"},
        {"signalType": "ImagePDQ", "hashValue": "ab" * 32, "hashStatus": "Active",
         "lastModtimestamp": "yesterday"},
        {"signalType": 7, "hashValue": "ab" * 32},
    ]  # fmt: skip
    for i, item in enumerate(bad):
        fake.add_raw(item, T0 + 3 + i)
    # Of a type hashmatch does not hold: passed over, however it looks.
    fake.add_raw({"signalType": "URL", "hashValue": "https://x"}, T0 + 4)
    fake.add_raw({"signalType": "SomethingNew"}, T0 + 4)
    c = client(fake)
    bank = apply({}, list(c.fetch(None)))
    assert bank == expected(fake) and len(bank) > 3
    assert c.skipped == len(bad)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"[]",
        b'{"count": 0}',
        b'{"hashRecords": [], "hasMoreRecords": "no", "nextSetTimestamp": 5}',
        b'{"hashRecords": [], "hasMoreRecords": false}',
        b'{"hashRecords": [], "hasMoreRecords": true, "nextSetTimestamp": 5}',
    ],
)
def test_an_unreadable_response_raises_retryable(fake: FakeStopncii, body: bytes) -> None:
    fake.raw_next.append(body)
    with pytest.raises(UpstreamError) as exc:
        list(client(fake).fetch(None))
    assert exc.value.retry


def test_an_unreadable_checkpoint_raises(fake: FakeStopncii) -> None:
    for bad in ("{", "[]", '{"start": "x"}', '{"start": 5, "token": 3}', '{"token": "t"}'):
        with pytest.raises(UpstreamError) as exc:
            list(client(fake).fetch(bad))
        assert not exc.value.retry


# -- feedback ---------------------------------------------------------------------------------
def feedback(value: bytes, verdict: Verdict, st: SignalType = SignalType.PDQ) -> UpstreamFeedback:
    return UpstreamFeedback(value.hex(), st, value, verdict)


def test_feedback_sends_the_documented_request(fake: FakeStopncii) -> None:
    a, b, v = secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(16)
    client(fake).send_feedback(
        [
            feedback(a, Verdict.TRUE_POSITIVE),
            feedback(b, Verdict.TRUE_POSITIVE),
            feedback(v, Verdict.FALSE_POSITIVE, SignalType.MD5),
            feedback(b, Verdict.FALSE_POSITIVE),  # the later verdict on b counts
            feedback(secrets.token_bytes(32), Verdict.TRUE_POSITIVE, SignalType.SHA256),
        ]
    )
    (request,) = [r for r in fake.requests if r.path == FEEDBACK_PATH]
    assert request.method == "POST"
    assert request.headers["Ocp-Apim-Subscription-Key"] == SUBSCRIPTION_KEY
    assert request.headers["x-functions-key"] == FEEDBACK_KEY
    assert json.loads(request.body) == {
        "count": 3,
        "hashFeedbacks": [
            {"hashValue": a.hex(), "feedbackValue": "Blocked", "tags": []},
            {"hashValue": v.hex(), "feedbackValue": "NotBlocked", "tags": []},
            {"hashValue": b.hex(), "feedbackValue": "NotBlocked", "tags": []},
        ],
    }
    assert [(f.hash_value, f.feedback_value) for f in fake.feedback] == [
        (a.hex(), "Blocked"),
        (v.hex(), "NotBlocked"),
        (b.hex(), "NotBlocked"),
    ]


def test_feedback_tags_and_batches(fake: FakeStopncii) -> None:
    values = [secrets.token_bytes(32) for _ in range(501)]
    c = client(fake, feedback_tags=("hashmatch",))
    c.send_feedback([feedback(x, Verdict.FALSE_POSITIVE) for x in values])
    bodies = [json.loads(r.body) for r in fake.requests if r.path == FEEDBACK_PATH]
    assert [b["count"] for b in bodies] == [500, 1]
    assert bodies[1]["hashFeedbacks"] == [
        {"hashValue": values[-1].hex(), "feedbackValue": "NotBlocked", "tags": ["hashmatch"]}
    ]
    c.send_feedback([])  # nothing: no request
    assert len(fake.feedback) == 501 and len(fake.paths()) == 2


def test_feedback_is_retried_and_a_wrong_key_refused(fake: FakeStopncii) -> None:
    fake.fail_next[FEEDBACK_PATH] = [503]
    client(fake).send_feedback([feedback(secrets.token_bytes(32), Verdict.TRUE_POSITIVE)])
    assert len(fake.feedback) == 1
    keys = (SUBSCRIPTION_KEY, FETCH_KEY, "wrong-feedback-key")
    with pytest.raises(UpstreamError) as exc:
        client(fake, keys).send_feedback([feedback(b"\1" * 32, Verdict.TRUE_POSITIVE)])
    assert exc.value.status == 401 and not exc.value.retry
    assert "wrong-feedback-key" not in str(exc.value) and "SubmitFeedback" in str(exc.value)
