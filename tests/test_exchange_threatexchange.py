"""ThreatExchangeClient against the fake Graph API on loopback: paging, resume from every
checkpoint, updates and deletions, retries, auth, malformed records, reactions."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest

from hashmatch.banks.model import SignalType, Tombstone
from hashmatch.errors import BadParameter
from hashmatch.exchanges.http import HttpSettings
from hashmatch.exchanges.model import (
    Credentials,
    UpstreamError,
    UpstreamFeedback,
    Verdict,
)
from hashmatch.exchanges.threatexchange import (
    CLOCK_SLACK_S,
    CREDENTIALS,
    ENVIRONMENTS,
    FIELDS,
    ThreatExchangeClient,
)
from tests.exchange_helpers import FAST, Bank, apply
from tests.fake_threatexchange import (
    APP_ID,
    BULK_DESCRIPTOR_BASE,
    OTHER_APP,
    TOKEN,
    Descriptor,
    FakeThreatExchange,
    bulk_id,
    bulk_value,
)


def pdq() -> str:
    return secrets.token_hex(32)


_open: list[ThreatExchangeClient] = []


@pytest.fixture(scope="module")
def server() -> Iterator[FakeThreatExchange]:
    with FakeThreatExchange(("1001", "2002")) as f:
        assert isinstance(f, FakeThreatExchange)
        yield f


@pytest.fixture
def fake(server: FakeThreatExchange) -> Iterator[FakeThreatExchange]:
    server.reset()
    yield server
    while _open:
        _open.pop().close()


def make_client(
    fake: FakeThreatExchange,
    groups: tuple[str, ...] = ("1001",),
    page_size: int = 3,
    token: str = TOKEN,
    settings: HttpSettings = FAST,
) -> ThreatExchangeClient:
    client = ThreatExchangeClient(
        "te",
        fake.base_url,
        Credentials((token,)),
        settings,
        privacy_groups=groups,
        page_size=page_size,
    )
    _open.append(client)
    return client


def sync(client: ThreatExchangeClient, checkpoint: str | None = None) -> tuple[Bank, str | None]:
    pages = list(client.fetch(checkpoint))
    return apply({}, pages), (pages[-1].checkpoint if pages else checkpoint)


def expected(fake: FakeThreatExchange, group: str = "1001") -> dict[str, tuple[bytes, str, str]]:
    """The fake's live indicators of the types hashmatch holds, as bank entries:
    external id -> (value, label, source)."""
    types = {"HASH_PDQ": "pdq", "HASH_MD5": "md5", "HASH_VIDEO_MD5": "md5"}
    types |= {"HASH_SHA256": "sha256", "HASH_VIDEO_SHA256": "sha256"}
    return {
        f"{group}/{i}/{types[r.type]}": (
            bytes.fromhex(r.indicator),
            ",".join(r.tags),
            f"te/{r.owner or group}",
        )
        for i, r in fake.live(group).items()
        if r.type in types
    }


def held(bank: Bank) -> dict[str, tuple[bytes, str, str]]:
    return {k: (e.value, e.label or "", e.source or "") for k, e in bank.items()}


def test_module_names_the_real_api() -> None:
    assert ENVIRONMENTS == {"production": "https://graph.facebook.com/v21.0"}
    assert CREDENTIALS == ("access_token",)


def test_full_fetch_over_pages_equals_upstream(fake: FakeThreatExchange) -> None:
    ids = [fake.add(pdq(), tags=("csam", f"t{n}")) for n in range(7)]
    md5 = fake.add(secrets.token_hex(16), "HASH_VIDEO_MD5", owner="999888777666")
    sha = fake.add(secrets.token_hex(32), "HASH_SHA256", tags=())
    fake.add("https://example.com/x", "URI")  # a type hashmatch does not hold: ignored
    client = make_client(fake)
    pages = list(client.fetch(None))
    assert len(pages) == 4  # 10 records, 3 a page
    bank = apply({}, pages)
    assert held(bank) == expected(fake)
    assert bank[f"1001/{ids[0]}/pdq"].label == "csam,t0"
    assert bank[f"1001/{ids[0]}/pdq"].source == f"te/{OTHER_APP}"
    assert bank[f"1001/{md5}/md5"].signal_type is SignalType.MD5
    assert bank[f"1001/{md5}/md5"].source == "te/999888777666"
    assert bank[f"1001/{sha}/sha256"].label is None
    assert client.skipped == 0
    # The request as the reference makes it: the token in the query, fields, limit, times.
    first = fake.requests[0]
    assert first.path == "/v21.0/1001/threat_updates/"
    assert first.query["access_token"] == [TOKEN]
    assert first.query["fields"] == [FIELDS]
    assert first.query["limit"] == ["3"]
    assert "start_time" not in first.query
    assert abs(int(first.query["stop_time"][0]) - time.time()) < 5
    assert all(r.query["access_token"] == [TOKEN] for r in fake.requests)
    assert all("after" in r.query for r in fake.requests[1:])
    # The checkpoint holds no credential.
    assert all(APP_ID not in p.checkpoint for p in pages)


def test_resume_from_every_checkpoint_equals_one_fetch(fake: FakeThreatExchange) -> None:
    for n in range(8):
        fake.add(pdq(), tags=(f"t{n}",))
    fake.add(pdq(), group="2002")
    doomed = fake.add(pdq(), group="2002")
    fake.delete(doomed, group="2002")
    client = make_client(fake, ("1001", "2002"), page_size=2)
    pages = list(client.fetch(None))
    whole = apply({}, pages)
    assert len(pages) == 5  # 8 records of 1001 two a page, then 2002's two
    for k, page in enumerate(pages):
        state = apply({}, pages[: k + 1])
        mid = json.loads(page.checkpoint)["groups"]
        assert all("access_token" not in (g["next"] or "") for g in mid.values())
        rest = list(make_client(fake, ("1001", "2002"), page_size=2).fetch(page.checkpoint))
        assert apply(state, rest) == whole, f"resumed after page {k}"
    assert held({k: v for k, v in whole.items() if k.startswith("1001/")}) == expected(fake)
    assert held({k: v for k, v in whole.items() if k.startswith("2002/")}) == expected(fake, "2002")


def test_mid_pagination_checkpoint_continues_with_the_next_page(
    fake: FakeThreatExchange,
) -> None:
    for _ in range(6):
        fake.add(pdq())
    pages = list(make_client(fake).fetch(None))
    assert json.loads(pages[0].checkpoint)["groups"]["1001"]["next"]
    again = list(make_client(fake).fetch(pages[0].checkpoint))
    assert again[0].events == pages[1].events  # exactly page 2, not a re-read


def test_update_and_deletion_arrive(fake: FakeThreatExchange) -> None:
    keep, change, drop, benign, hidden = (fake.add(pdq()) for _ in range(5))
    client = make_client(fake, page_size=10)
    bank, checkpoint = sync(client)
    assert len(bank) == 5
    new_value = pdq()
    fake.update(change, indicator=new_value, tags=("csam", "reviewed"))
    fake.delete(drop)
    fake.update(benign, status="NON_MALICIOUS")  # every opinion now calls it benign
    fake.update(hidden, visible=False)  # served without descriptors: a deletion too
    pages = list(client.fetch(checkpoint))
    events = [e for p in pages for e in p.events]
    tombstoned = {e.external_id for e in events if isinstance(e, Tombstone)}
    assert {f"1001/{i}/{s}" for i in (drop, benign, hidden) for s in SignalType} <= tombstoned
    apply(bank, pages)
    assert set(bank) == {f"1001/{keep}/pdq", f"1001/{change}/pdq"}
    assert bank[f"1001/{change}/pdq"].value == bytes.fromhex(new_value)
    assert bank[f"1001/{change}/pdq"].label == "csam,reviewed"
    assert held(bank) == expected(fake)
    # A later sync with nothing new changes nothing.
    checkpoint = pages[-1].checkpoint
    assert apply(dict(bank), list(client.fetch(checkpoint))) == bank


def test_a_quiet_group_is_not_read_again(fake: FakeThreatExchange) -> None:
    for _ in range(4):
        fake.add(pdq(), at=int(time.time()) - 3600)
    client = make_client(fake)
    bank, checkpoint = sync(client)
    assert len(bank) == 4
    stop = int(fake.requests[0].query["stop_time"][0])
    assert checkpoint is not None
    assert json.loads(checkpoint)["groups"]["1001"] == {
        "update_time": stop - CLOCK_SLACK_S,
        "next": None,
    }
    fake.requests.clear()
    pages = list(client.fetch(checkpoint))
    assert all(p.events == [] for p in pages)  # at most the watermark moved on
    assert fake.requests[0].query["start_time"] == [str(stop - CLOCK_SLACK_S)]
    fresh = fake.add(pdq())
    apply(bank, list(client.fetch(pages[-1].checkpoint if pages else checkpoint)))
    assert held(bank) == expected(fake) and f"1001/{fresh}/pdq" in bank


def test_changes_during_a_pass_arrive_in_their_final_state(fake: FakeThreatExchange) -> None:
    ids = [fake.add(pdq()) for _ in range(6)]
    client = make_client(fake, page_size=2)
    pages = client.fetch(None)
    bank = apply({}, [next(pages)])  # ids 0 and 1
    fake.update(ids[0], tags=("moved",))  # already read: comes again at the end
    fake.delete(ids[4])  # not read yet: comes only as its deletion
    bank = apply(bank, list(pages))
    assert held(bank) == expected(fake)
    assert bank[f"1001/{ids[0]}/pdq"].label == "moved"


def test_several_descriptors_and_tag_edges(fake: FakeThreatExchange) -> None:
    fake.tags_as_edge = True
    i = fake.add(
        pdq(),
        descriptors=[
            Descriptor("7002", "222", ("b", "shared")),
            Descriptor("7001", "111", ("a",)),
            Descriptor("7003", "333", ("zzz",), status="NON_MALICIOUS"),
        ],
    )
    nobody = fake.add(pdq(), owner=None, tags=("x",))
    bank, _ = sync(make_client(fake))
    entry = bank[f"1001/{i}/pdq"]
    assert entry.label == "a,b,shared"  # the benign opinion's tags are not the label
    assert entry.source == "te/111"  # the owner of the oldest descriptor
    assert bank[f"1001/{nobody}/pdq"].source == "te/1001"  # no owner shown: the group


def test_same_indicator_in_two_groups_is_two_records(fake: FakeThreatExchange) -> None:
    value = pdq()
    fake.add(value, id="424242", group="1001")
    fake.add(value, id="424242", group="2002")
    client = make_client(fake, ("1001", "2002"))
    bank, checkpoint = sync(client)
    assert set(bank) == {"1001/424242/pdq", "2002/424242/pdq"}
    fake.delete("424242", group="2002")
    apply(bank, list(client.fetch(checkpoint)))
    assert set(bank) == {"1001/424242/pdq"}  # one group's removal leaves the other's


def test_429_with_retry_after_and_500_are_retried(fake: FakeThreatExchange) -> None:
    for _ in range(5):
        fake.add(pdq())
    path = fake.updates_path()
    fake.retry_after_s = 0.3
    fake.fail_next[path] = [429, 500, 500]
    # Http caps a wait at backoff_max_s: room for the 0.3 s asked, backoff 0.01 s else.
    client = make_client(fake, settings=HttpSettings(backoff_s=0.01, backoff_max_s=2.0))
    started = time.monotonic()
    bank, _ = sync(client)
    assert 0.3 <= time.monotonic() - started < 1.5  # Retry-After honoured, not the cap
    assert held(bank) == expected(fake)
    assert fake.paths().count(path) == 2 + 3  # two pages, three failures before them


def test_graph_rate_limit_errors_are_retried(fake: FakeThreatExchange) -> None:
    """Graph says "slow down" with a 400 and an error code, not a 429."""
    fake.add(pdq())
    fake.throttle_next = 2
    bank, _ = sync(make_client(fake))
    assert held(bank) == expected(fake) and fake.throttle_next == 0


def test_retries_exhausted_raise_retryable(fake: FakeThreatExchange) -> None:
    fake.add(pdq())
    fake.fail_next[fake.updates_path()] = [503] * 10
    with pytest.raises(UpstreamError) as info:
        list(make_client(fake).fetch(None))
    assert info.value.retry is True and info.value.status == 503
    assert TOKEN not in str(info.value) and APP_ID not in str(info.value)


def test_wrong_token_is_not_retried_and_not_shown(fake: FakeThreatExchange) -> None:
    fake.add(pdq())
    wrong = f"{APP_ID}|not-the-secret-9f8e7d6c5b4a"
    with pytest.raises(UpstreamError) as info:
        list(make_client(fake, token=wrong).fetch(None))
    assert info.value.retry is False and info.value.status == 400
    assert "not-the-secret" not in str(info.value) and APP_ID not in str(info.value)
    assert len(fake.requests) == 1
    assert "secret" not in repr(make_client(fake, token=wrong))
    with pytest.raises(BadParameter):
        ThreatExchangeClient("te", fake.base_url, Credentials(()), privacy_groups=["1001"])
    with pytest.raises(BadParameter):
        make_client(fake, groups=("../me",))


def test_unknown_privacy_group_is_not_retried(fake: FakeThreatExchange) -> None:
    with pytest.raises(UpstreamError) as info:
        list(make_client(fake, groups=("3003",)).fetch(None))
    assert info.value.retry is False


def test_malformed_records_are_skipped_and_counted(fake: FakeThreatExchange) -> None:
    good = fake.add(pdq())
    now = int(time.time())
    ok = {"data": [{"id": "77", "owner": {"id": OTHER_APP}, "tags": ["a"], "status": "MALICIOUS"}]}
    bad: list[dict[str, object]] = [
        {"id": "1", "type": "HASH_PDQ", "indicator": "zz" * 32},  # not hex
        {"id": "2", "type": "HASH_PDQ", "indicator": "ab" * 31},  # too short
        {"id": "3", "type": "HASH_PDQ"},  # no indicator
        {"type": "HASH_PDQ", "indicator": pdq()},  # no id
        {"id": "5", "type": "HASH_PDQ", "indicator": pdq(), "descriptors": "nonsense"},
        {"id": "6", "type": "HASH_PDQ", "indicator": pdq(), "last_updated": "soon"},
        {"id": "7", "type": "HASH_PDQ", "indicator": pdq(), "descriptors": {"data": [{}]}},
        {"id": "8", "type": "HASH_MD5", "indicator": pdq(), "should_delete": "no"},
    ]
    for item in bad:
        fake.add_raw({"last_updated": now, "descriptors": ok, **item})
    fake.add_raw("not an object")  # type: ignore[arg-type]
    fake.add_raw({"id": "9", "type": "TMK_PDQF", "indicator": "whatever", "last_updated": now})
    after = fake.add(pdq())
    client = make_client(fake)
    bank, _ = sync(client)
    assert set(bank) == {f"1001/{good}/pdq", f"1001/{after}/pdq"}
    assert client.skipped == 9  # the unknown type (TMK_PDQF) is ignored, not counted


def test_unreadable_page_raises_retryable(fake: FakeThreatExchange) -> None:
    fake.add(pdq())

    def garbage(request: object) -> object:
        from tests.fake_http import Answer

        return Answer(200, b"<html>oops</html>", "text/html")

    fake.route = garbage  # type: ignore[method-assign,assignment]
    with pytest.raises(UpstreamError) as info:
        list(make_client(fake).fetch(None))
    assert info.value.retry is True


def test_next_url_of_another_host_is_not_followed(fake: FakeThreatExchange) -> None:
    from tests.fake_http import Answer

    def elsewhere(request: object) -> Answer:
        body = {"data": [], "paging": {"next": "https://evil.example/v21.0/1001/x?a=1"}}
        return Answer(200, json.dumps(body).encode())

    fake.route = elsewhere  # type: ignore[method-assign,assignment]
    with pytest.raises(UpstreamError) as info:
        list(make_client(fake).fetch(None))
    assert info.value.retry is False
    assert len(fake.requests) == 1


def test_feedback_posts_reactions_to_descriptors(fake: FakeThreatExchange) -> None:
    theirs = fake.add(
        pdq(),
        descriptors=[Descriptor("7101", OTHER_APP, ("a",)), Descriptor("7102", APP_ID, ("a",))],
    )
    other = fake.add(pdq())
    fake.add_many(3)
    client = make_client(fake)
    value = b"\x00" * 32
    client.send_feedback(
        [
            UpstreamFeedback(f"1001/{theirs}", SignalType.PDQ, value, Verdict.FALSE_POSITIVE),
            UpstreamFeedback(f"1001/{theirs}", SignalType.PDQ, value, Verdict.FALSE_POSITIVE),
            UpstreamFeedback(f"1001/{other}", SignalType.PDQ, value, Verdict.TRUE_POSITIVE),
            UpstreamFeedback(f"1001/{bulk_id(1)}", SignalType.PDQ, value, Verdict.TRUE_POSITIVE),
            UpstreamFeedback("1001/not-an-id", SignalType.PDQ, value, Verdict.TRUE_POSITIVE),
        ]
    )
    other_descriptor = fake.groups["1001"].hand[other].descriptors[0].id
    assert fake.reactions == [
        ("7101", "DISAGREE_WITH_TAGS", APP_ID),  # not 7102: our own app's descriptor
        (other_descriptor, "HELPFUL", APP_ID),
        (str(BULK_DESCRIPTOR_BASE + 1), "HELPFUL", APP_ID),
    ]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == [f"/v21.0/{d}/" for d, _, _ in fake.reactions]
    assert posts[0].query["access_token"] == [TOKEN]
    assert posts[0].body == b"reactions=DISAGREE_WITH_TAGS"
    lookups = [r for r in fake.requests if r.method == "GET"]
    assert [r.path for r in lookups] == [f"/v21.0/{i}/" for i in (theirs, other, bulk_id(1))]


def test_feedback_failure_raises(fake: FakeThreatExchange) -> None:
    i = fake.add(pdq())
    fb = UpstreamFeedback(f"1001/{i}", SignalType.PDQ, b"\x00" * 32, Verdict.TRUE_POSITIVE)
    fake.fail_next[f"/v21.0/{i}/"] = [500] * 10
    with pytest.raises(UpstreamError) as info:
        make_client(fake).send_feedback([fb])
    assert info.value.retry is True
    with pytest.raises(UpstreamError) as info:
        make_client(fake, token="1|wrong").send_feedback([fb])
    assert info.value.retry is False
    assert "wrong" not in str(info.value)
    assert fake.reactions == []


def test_add_many_pages_cheaply(fake: FakeThreatExchange) -> None:
    fake.add_many(2500, start=100)
    fake.update(bulk_id(150), tags=("changed",))
    client = make_client(fake, page_size=1000)
    started = time.monotonic()
    pages = list(client.fetch(None))
    bank = apply({}, pages)
    assert time.monotonic() - started < 5
    assert [len(p.events) for p in pages] == [4000, 4000, 2000]  # 3 tombstones + 1 entry each
    assert len(bank) == 2500
    assert bank[f"1001/{bulk_id(100)}/pdq"].value == bulk_value(100)
    assert bank[f"1001/{bulk_id(150)}/pdq"].label == "changed"
    assert bank[f"1001/{bulk_id(2599)}/pdq"].label == "bulk"
    assert held(bank) == expected(fake)
