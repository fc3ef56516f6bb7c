"""NcmecClient against the fake hash-sharing API on loopback: windows read whole before the
checkpoint passes them (entries come out of time order), resume from every checkpoint,
updates and deletions, window splitting, stale links, retries, auth, malformed records,
feedback."""

from __future__ import annotations

import collections
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashmatch.banks.model import BankSettings, NewEntry, SignalType, Tombstone
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.config import ExchangesConfig
from hashmatch.errors import BadParameter
from hashmatch.exchanges.http import HttpSettings
from hashmatch.exchanges.model import (
    Credentials,
    ExchangeSettings,
    ExchangeType,
    UpstreamError,
    UpstreamFeedback,
    Verdict,
    external_id,
)
from hashmatch.exchanges.ncmec import (
    CREDENTIALS,
    ENVIRONMENTS,
    LINK_TTL_S,
    NcmecClient,
    _checked_link,
)
from hashmatch.exchanges.runner import ExchangeRunner
from tests.exchange_helpers import FAST, Bank, Clock, apply
from tests.fake_ncmec import (
    DEFAULT_REASON,
    ENTRIES_PATH,
    MEMBER_ID,
    OWN_ID,
    OWN_NAME,
    PASSWORD,
    USER,
    FakeEntry,
    FakeNcmec,
    bulk_hashes,
)

T0 = 1_700_000_000  # upstream timestamps in these tests


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNcmec]:
    with FakeNcmec() as f:
        assert isinstance(f, FakeNcmec)
        yield f


@pytest.fixture
def fake(server: FakeNcmec) -> FakeNcmec:
    server.reset(page_size=7, shuffle_block=64)
    return server


_open: list[NcmecClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def client(
    fake: FakeNcmec, clock: Clock | None = None, creds: tuple[str, str] = (USER, PASSWORD), **kw
) -> NcmecClient:
    kw.setdefault("lag_s", 0)
    kw.setdefault("max_window_records", 1_000_000)
    c = NcmecClient(
        "ncmec-industry",
        fake.base_url,
        Credentials(creds),
        FAST,
        clock=clock or Clock(T0 + 10_000),
        **kw,
    )
    _open.append(c)
    return c


def pdq() -> str:
    return secrets.token_hex(32)


def md5() -> str:
    return secrets.token_hex(16)


def fill(fake: FakeNcmec, n: int, *, ts: int = T0) -> None:
    """n records one second apart, each with a PDQ and an MD5 (some only one), two members,
    images and videos, classifications A1/A2/none."""
    for i in range(n):
        fake.add(
            f"e{i}",
            ts + i,
            pdq=pdq() if i % 5 != 3 else None,
            md5=md5() if i % 7 != 2 else None,
            fingerprints={"sha1": secrets.token_hex(20)},
            classification=("A1", "A2", None)[i % 3],
            member_id=MEMBER_ID if i % 4 else 77,
            kind="video" if i % 6 == 0 else "image",
        )


def expected(fake: FakeNcmec, *, leave_out: tuple[str, ...] = ()) -> Bank:
    bank: Bank = {}
    for e in fake.live().values():
        if e.entry_id in leave_out:
            continue
        for tag, st in (("pdq", SignalType.PDQ), ("md5", SignalType.MD5)):
            value = e.print_of(tag)
            if value is not None:
                ext = external_id(f"{e.member_id}/{e.entry_id}", st)
                source = f"ncmec-industry/{e.member_id}"
                bank[ext] = NewEntry(st, bytes.fromhex(value), e.classification, ext, source)
    return bank


def entries_requests(fake: FakeNcmec) -> int:
    return sum(p == ENTRIES_PATH for p in fake.paths())


# -- the constants the registry reads -----------------------------------------------------------
def test_environments_and_credentials() -> None:
    assert ENVIRONMENTS["industry"] == "https://report.cybertip.org/hashsharing"
    assert ENVIRONMENTS["ngo"] == "https://hashsharing.ncmec.org/npo"
    assert ENVIRONMENTS["exploitative"] == "https://hashsharing.ncmec.org/exploitative"
    assert ENVIRONMENTS["test-industry"] == "https://exttest.cybertip.org/hashsharing"
    assert ENVIRONMENTS["test-ngo"] == "https://hashsharing-test.ncmec.org/npo"
    assert ENVIRONMENTS["test-exploitative"] == "https://hashsharing-test.ncmec.org/exploitative"
    assert all(url.startswith("https://") for url in ENVIRONMENTS.values())
    assert CREDENTIALS == ("user", "password")
    with pytest.raises(BadParameter):
        NcmecClient("x", "https://example.org", Credentials(("only-user",)))


# -- fetching ---------------------------------------------------------------------------------
def test_full_fetch_over_several_pages_equals_upstream(fake: FakeNcmec) -> None:
    fill(fake, 40)
    fake.add("gone", T0 + 50, pdq=pdq())
    fake.delete("gone", T0 + 60)
    pages = list(client(fake).fetch(None))
    bank = apply({}, pages)
    assert bank == expected(fake)
    assert len(bank) > 60  # both fingerprints of most records
    assert f"{MEMBER_ID}/gone/pdq" not in bank
    # Every record came once, over pages of at most 7 (the fake's page size).
    assert len(pages) == 6 and entries_requests(fake) == 6
    some = bank[external_id("77/e0", SignalType.PDQ)]
    assert (some.label, some.source) == ("A1", "ncmec-industry/77")
    assert bank[external_id(f"{MEMBER_ID}/e2", SignalType.PDQ)].label is None
    # The last page ends the window: its checkpoint is the window's end, nothing open.
    assert json.loads(pages[-1].checkpoint) == {"from": T0 + 10_000}
    assert pages[0].upstream_time is not None and pages[0].upstream_time >= T0


def test_entries_come_out_of_time_order(fake: FakeNcmec) -> None:
    """Why the checkpoint waits for a window's end: after the first page, unseen records
    are older than the newest one seen, so "newest seen" as a checkpoint would lose them."""
    fill(fake, 40)
    pages = list(client(fake).fetch(None))
    first_newest = pages[0].upstream_time
    assert first_newest is not None
    later = [
        int(e.external_id.split("/")[1][1:])
        for p in pages[1:]
        for e in p.events
        if isinstance(e, NewEntry) and e.external_id
    ]
    assert any(T0 + i < first_newest for i in later)
    # Mid-window checkpoints hold the window and the link, not a time past it.
    mid = json.loads(pages[0].checkpoint)
    assert mid["from"] == 0 and mid["to"] == T0 + 10_000 and mid["next"].startswith("/v2/")


def test_resume_from_every_checkpoint_equals_one_fetch(fake: FakeNcmec) -> None:
    fill(fake, 40)
    whole = list(client(fake).fetch(None))
    want = apply({}, whole)
    for k, page in enumerate(whole):
        resumed = list(client(fake).fetch(page.checkpoint))
        assert apply(apply({}, whole[: k + 1]), resumed) == want
        # It continues with exactly the pages after k.
        assert [p.events for p in resumed] == [p.events for p in whole[k + 1 :]]


def test_a_killed_fetch_resumes_from_its_last_committed_page(fake: FakeNcmec) -> None:
    fill(fake, 30)
    bank: Bank = {}
    checkpoint = None
    runs = 0
    while True:  # each run commits at most two pages, then "dies"
        runs += 1
        pages = list(itertools.islice(client(fake).fetch(checkpoint), 2))
        if not pages:
            break
        apply(bank, pages)
        checkpoint = pages[-1].checkpoint
    assert runs == 4 and bank == expected(fake)  # 5 pages, two a run, then nothing left


def test_update_and_deletion_upstream_arrive(fake: FakeNcmec) -> None:
    fill(fake, 20)
    clock = Clock(T0 + 1000)
    c = client(fake, clock)
    pages = list(c.fetch(None))
    bank = apply({}, pages)
    e5, e7 = fake.get("e5"), fake.get("e7")
    assert e5 is not None and e5.print_of("pdq") and e5.print_of("md5")
    assert e7 is not None
    new_pdq = pdq()
    fake.update("e5", T0 + 1500, pdq=new_pdq, md5=None, classification="B1")  # md5 dropped
    fake.delete("e7", T0 + 1501)
    fake.add("e-new", T0 + 1502, md5=md5(), classification="A2")
    clock.now = T0 + 2000
    later = list(c.fetch(pages[-1].checkpoint))
    apply(bank, later)
    assert bank == expected(fake)
    ext5 = f"{e5.member_id}/e5"
    assert bank[f"{ext5}/pdq"].value == bytes.fromhex(new_pdq)
    assert bank[f"{ext5}/pdq"].label == "B1"
    assert f"{ext5}/md5" not in bank
    assert not any(k.startswith(f"{e7.member_id}/e7/") for k in bank)
    events = [e for p in later for e in p.events]
    assert Tombstone(f"{e7.member_id}/e7/pdq") in events
    assert f"{MEMBER_ID}/e-new/md5" in bank
    # Only the new window was read: three records.
    assert sum(isinstance(e, NewEntry) for e in events) == 2


def test_records_newer_than_the_lag_wait(fake: FakeNcmec) -> None:
    fake.add("old", T0, pdq=pdq())
    fake.add("fresh", T0 + 95, pdq=pdq())
    clock = Clock(T0 + 100)
    c = client(fake, clock, lag_s=30)
    pages = list(c.fetch(None))
    bank = apply({}, pages)
    assert set(bank) == {f"{MEMBER_ID}/old/pdq"}
    assert json.loads(pages[-1].checkpoint) == {"from": T0 + 70}
    clock.now = T0 + 200
    apply(bank, list(c.fetch(pages[-1].checkpoint)))
    assert bank == expected(fake)


def test_nothing_new_reads_one_empty_window(fake: FakeNcmec) -> None:
    fill(fake, 3)
    clock = Clock(T0 + 100)
    c = client(fake, clock)
    done = list(c.fetch(None))[-1].checkpoint
    before = entries_requests(fake)
    assert list(c.fetch(done)) == []  # the window is empty: from == now
    clock.now += 50
    again = list(c.fetch(done))
    assert [p.events for p in again] == [[]]
    assert entries_requests(fake) == before + 1


def test_a_large_window_is_split_and_still_complete(fake: FakeNcmec) -> None:
    fake.add_many(300, 1000, ts=T0, step=2)  # 300 records over 600 s
    fill(fake, 10, ts=T0 + 400)

    def split_client() -> NcmecClient:
        return client(fake, Clock(T0 + 2000), max_window_records=60, page_size=8)

    pages = list(split_client().fetch(None))
    bank = apply({}, pages)
    assert bank == expected(fake) and len(bank) > 600
    firsts = [
        (r.query["from"][0], r.query["to"][0]) for r in fake.requests if "start" not in r.query
    ]
    # The first window, 1970 to now, was cut at once to where the records are.
    assert firsts[0] == ("1970-01-01T00:00:00Z", "2023-11-14T22:46:40Z")
    assert firsts[1][0] == "1970-01-01T00:00:00Z" and firsts[1][1] < "2023-11-14T22:14"
    # Every window read to its end held at most the limit.
    ends = [0] + [cp["from"] for p in pages if "to" not in (cp := json.loads(p.checkpoint))]
    times = [e.ts for e in fake.live().values()]
    held = [sum(a <= t < b for t in times) for a, b in itertools.pairwise(ends)]
    assert len(held) > 10 and max(held) <= 60 and sum(held) == len(times)
    # Windows span several pages; the pages' checkpoints only ever move forward.
    mids = collections.Counter(json.loads(p.checkpoint).get("to") for p in pages)
    del mids[None]
    assert len(mids) > 10 and max(mids.values()) >= 2
    starts = [json.loads(p.checkpoint)["from"] for p in pages]
    assert starts == sorted(starts)
    # And each resumes.
    for k in range(0, len(pages), 9):
        rest = list(split_client().fetch(pages[k].checkpoint))
        assert apply(apply({}, pages[: k + 1]), rest) == bank


def test_bulk_records_are_deterministic(fake: FakeNcmec) -> None:
    fake.add_many(50, 7, ts=T0)
    bank = apply({}, list(client(fake).fetch(None)))
    p, m = bulk_hashes(30)
    assert bank[f"{MEMBER_ID}/30/pdq"].value == p and bank[f"{MEMBER_ID}/30/md5"].value == m
    assert len(bank) == 100
    fake.update("30", T0 + 5000, pdq=None)
    fake.delete("31", T0 + 5000)
    bank = apply({}, list(client(fake).fetch(None)))
    assert f"{MEMBER_ID}/30/pdq" not in bank and f"{MEMBER_ID}/30/md5" in bank
    assert not any(k.startswith(f"{MEMBER_ID}/31/") for k in bank)
    assert bank == expected(fake)


def test_a_stale_link_restarts_its_window(fake: FakeNcmec) -> None:
    fill(fake, 30)
    clock = Clock(T0 + 1000)
    pages = list(client(fake, clock).fetch(None))
    mid = pages[1].checkpoint
    assert json.loads(mid)["next"]
    clock.now += LINK_TTL_S + 1
    fake.requests.clear()
    resumed = list(client(fake, clock).fetch(mid))
    first = fake.requests[0]
    assert "start" not in first.query and first.query["from"] == ["1970-01-01T00:00:00Z"]
    assert apply(apply({}, pages[:2]), resumed) == expected(fake)


def test_a_window_past_now_is_read_again_up_to_now(fake: FakeNcmec) -> None:
    fill(fake, 20)
    pages = list(client(fake, Clock(T0 + 1000)).fetch(None))
    fake.requests.clear()
    resumed = list(client(fake, Clock(T0 + 500)).fetch(pages[0].checkpoint))
    assert "start" not in fake.requests[0].query
    assert fake.requests[0].query["to"] == [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + 500))
    ]
    assert apply({}, resumed) == expected(fake)


def test_status_names_the_member(fake: FakeNcmec) -> None:
    assert client(fake).status() == (OWN_ID, OWN_NAME)


# -- failures ---------------------------------------------------------------------------------
def test_429_with_retry_after_and_500_are_retried(fake: FakeNcmec) -> None:
    fill(fake, 10)
    fake.fail_next[ENTRIES_PATH] = [429, 500, 429]
    fake.retry_after_s = 0.1
    c = NcmecClient(
        "ncmec-industry",
        fake.base_url,
        Credentials((USER, PASSWORD)),
        HttpSettings(backoff_s=0.01, backoff_max_s=1.0),
        lag_s=0,
        clock=Clock(T0 + 100),
    )
    _open.append(c)
    started = time.monotonic()
    bank = apply({}, list(c.fetch(None)))
    assert time.monotonic() - started >= 0.2  # two Retry-After waits
    assert bank == expected(fake)
    assert entries_requests(fake) == 3 + 2


def test_persistent_5xx_raises_retryable(fake: FakeNcmec) -> None:
    fill(fake, 3)
    fake.fail_next[ENTRIES_PATH] = [503] * 10
    with pytest.raises(UpstreamError) as info:
        list(client(fake).fetch(None))
    assert info.value.retry and info.value.status == 503


def test_wrong_credentials_raise_without_the_secret(fake: FakeNcmec) -> None:
    secret = secrets.token_hex(12)
    c = client(fake, creds=("someone", secret))
    with pytest.raises(UpstreamError) as info:
        list(c.fetch(None))
    assert info.value.retry is False and info.value.status == 401
    assert secret not in str(info.value) and "someone" not in str(info.value)
    assert secret not in repr(c)
    with pytest.raises(UpstreamError) as info:
        c.send_feedback(
            [UpstreamFeedback("42/e1", SignalType.PDQ, b"\0" * 32, Verdict.TRUE_POSITIVE)]
        )
    assert info.value.status == 401 and secret not in str(info.value)


def test_malformed_records_are_skipped_and_counted(fake: FakeNcmec) -> None:
    fill(fake, 12)
    fake.add("bad-pdq", T0 + 20, pdq="zz" * 32, md5=md5())
    fake.add("short-md5", T0 + 21, md5="ab" * 4)
    fake.add("bad-member", T0 + 22, pdq=pdq(), member_id="x")
    fake.add("only-sha1", T0 + 23, fingerprints={"sha1": "ab" * 20, "pdna": "AAAA"})
    c = client(fake)
    bank = apply({}, list(c.fetch(None)))
    assert c.skipped == 3
    assert bank == expected(fake, leave_out=("bad-pdq", "short-md5", "bad-member"))
    assert not any("only-sha1" in k for k in bank)  # other fingerprint types: ignored


def test_an_unreadable_response_raises_retryable(fake: FakeNcmec) -> None:
    fill(fake, 3)
    fake.fail_next[ENTRIES_PATH] = [200]  # the base answers "{}": not XML
    with pytest.raises(UpstreamError) as info:
        list(client(fake).fetch(None))
    assert info.value.retry is True


def test_an_unreadable_checkpoint_raises(fake: FakeNcmec) -> None:
    with pytest.raises(UpstreamError) as info:
        list(client(fake).fetch("{not json"))
    assert info.value.retry is False


def test_next_links_must_stay_in_the_api() -> None:
    assert _checked_link("/v2/entries?from=a&start=3") == "/v2/entries?from=a&start=3"
    for bad in (
        "https://evil.example/v2/entries?x",
        "//evil.example/v2/entries",
        "/v2/entries/../../status",
        "/v3/other",
    ):
        with pytest.raises(UpstreamError):
            _checked_link(bad)


# -- feedback ---------------------------------------------------------------------------------
def test_feedback_sends_the_documented_requests(fake: FakeNcmec) -> None:
    fill(fake, 8)
    c = client(fake)
    bank = apply({}, list(c.fetch(None)))
    hit = bank[external_id(f"{MEMBER_ID}/e1", SignalType.PDQ)]
    also = bank[external_id(f"{MEMBER_ID}/e1", SignalType.MD5)]
    fake.requests.clear()
    c.send_feedback(
        [
            UpstreamFeedback(f"{MEMBER_ID}/e1", SignalType.PDQ, hit.value, Verdict.TRUE_POSITIVE),
            UpstreamFeedback(f"{MEMBER_ID}/e1", SignalType.PDQ, hit.value, Verdict.TRUE_POSITIVE),
            UpstreamFeedback(f"{MEMBER_ID}/e1", SignalType.MD5, also.value, Verdict.FALSE_POSITIVE),
            UpstreamFeedback(
                f"{MEMBER_ID}/e1", SignalType.SHA256, b"\0" * 32, Verdict.TRUE_POSITIVE
            ),
        ]
    )
    calls = [(f.member, f.entry, f.fp_type, f.vote, f.reasons) for f in fake.feedback]
    assert calls == [
        (str(MEMBER_ID), "e1", "PDQ", "affirmative", []),
        (str(MEMBER_ID), "e1", "MD5", "negative", [DEFAULT_REASON[0]]),
    ]
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [
        f"/hashsharing/v2/entries/{MEMBER_ID}/e1/PDQ/feedback",
        f"/hashsharing/v2/entries/{MEMBER_ID}/e1/MD5/feedback",
    ]
    assert puts[0].headers["Content-Type"].startswith("application/xml")
    assert b"<affirmative" in puts[0].body and b"feedbackSubmission" in puts[0].body
    gets = [r.path for r in fake.requests if r.method == "GET"]
    assert gets == ["/hashsharing/v2/feedback/MD5/reasons"]
    # The reasons are asked once per type.
    c.send_feedback(
        [UpstreamFeedback(f"{MEMBER_ID}/e3", SignalType.MD5, b"\0" * 16, Verdict.FALSE_POSITIVE)]
    )
    assert [r.path for r in fake.requests if r.method == "GET"] == gets


def test_negative_feedback_picks_a_reason(fake: FakeNcmec) -> None:
    fake.add("e1", T0, pdq=pdq())
    fake.reasons["PDQ"] = [("g-1", "Not CSAM"), ("g-2", "Wrong classification")]
    item = UpstreamFeedback(f"{MEMBER_ID}/e1", SignalType.PDQ, b"\0" * 32, Verdict.FALSE_POSITIVE)
    with pytest.raises(UpstreamError) as info:
        client(fake).send_feedback([item])
    assert info.value.retry is False and "Wrong classification" in str(info.value)
    client(fake, negative_reason="wrong classification").send_feedback([item])
    assert fake.feedback[-1].reasons == ["g-2"]
    fake.reasons["PDQ"].append(("g-3", "False positive"))
    client(fake).send_feedback([item])
    assert fake.feedback[-1].reasons == ["g-3"]


def test_feedback_on_an_unknown_entry_is_an_error(fake: FakeNcmec) -> None:
    item = UpstreamFeedback(f"{MEMBER_ID}/nope", SignalType.PDQ, b"\0" * 32, Verdict.TRUE_POSITIVE)
    with pytest.raises(UpstreamError) as info:
        client(fake).send_feedback([item])
    assert info.value.status == 404 and not info.value.retry
    # Ids this client never made are passed over.
    client(fake).send_feedback(
        [UpstreamFeedback("not-ours", SignalType.PDQ, b"\0" * 32, Verdict.TRUE_POSITIVE)]
    )
    assert fake.feedback == []


def test_fake_entry_shape() -> None:
    e = FakeEntry("x", T0, fingerprints=(("pdq", "ab"),))
    assert e.print_of("pdq") == "ab" and e.print_of("md5") is None


def test_the_configured_reason_reaches_the_runners_client(fake: FakeNcmec, tmp_path: Path) -> None:
    """[exchanges] ncmec_negative_reason, through the runner a server and the CLI use."""
    store = SqliteBankStore(tmp_path / "banks.sqlite3")
    try:
        store.create_bank("ncmec", BankSettings())
        settings = ExchangeSettings(url=fake.base_url, credentials_env=("U", "P"),
                                    feedback_upstream=True)  # fmt: skip
        x = store.add_exchange("nc", ExchangeType.NCMEC, "ncmec", settings)
        fake.add("e1", T0, pdq=pdq())
        fake.reasons["PDQ"] = [("g-1", "Not CSAM"), ("g-2", "Wrong classification")]
        item = UpstreamFeedback(f"{MEMBER_ID}/e1", SignalType.PDQ, b"\0" * 32,
                                Verdict.FALSE_POSITIVE)  # fmt: skip
        store.queue_feedback(store.get_bank("ncmec").id, "acme", [item])
        config = ExchangesConfig(backoff_s=0.01, backoff_max_s=0.05,
                                 ncmec_negative_reason="g-2")  # fmt: skip
        runner = ExchangeRunner(store, config, {"U": USER, "P": PASSWORD})
        report = runner.sync(x)
        assert report.feedback_error is None and report.feedback_sent == 1
        assert fake.feedback[-1].reasons == ["g-2"]
    finally:
        store.close()
