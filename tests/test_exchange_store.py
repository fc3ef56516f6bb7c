"""The exchange half of the bank store contract, on SQLite and on PostgreSQL, and one sync
driven page by page: checkpoints commit with their entries, a page that fails leaves
nothing, the lock keeps a second sync out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from hashmatch.banks.exchange_tables import FEEDBACK_PER_DAY
from hashmatch.banks.model import BankSettings, NewEntry, SignalType, Tombstone
from hashmatch.banks.store import BankStore
from hashmatch.errors import AlreadyExists, BadParameter, NotFound
from hashmatch.exchanges.model import (
    ExchangeSettings,
    ExchangeType,
    Page,
    Progress,
    UpstreamError,
    UpstreamFeedback,
    Verdict,
    record_events,
)
from hashmatch.exchanges.sync import sync_exchange
from tests.conftest import BankOpener

NCMEC = ExchangeSettings(environment="test-industry", credentials_env=("U", "P"))


@pytest.fixture
def store(open_bank_store: BankOpener) -> Iterator[BankStore]:
    s = open_bank_store()
    s.create_bank("ncmec", BankSettings())
    s.create_bank("other", BankSettings())
    yield s
    s.close()


def pdq(i: int) -> bytes:
    return i.to_bytes(32, "big")


def live(store: BankStore, bank: str = "ncmec") -> dict[str, tuple[bytes, str | None, str | None]]:
    out, after = {}, 0
    while rows := store.list_entries(bank, after_id=after, limit=1000):
        for e in rows:
            assert e.external_id is not None
            out[e.external_id] = (e.value, e.label, e.source)
        after = rows[-1].id
    return out


def test_add_list_and_the_one_exchange_per_bank_rule(store: BankStore) -> None:
    x = store.add_exchange("ncmec-test", ExchangeType.NCMEC, "ncmec", NCMEC)
    assert (x.name, x.type, x.bank, x.settings, x.paused, x.checkpoint) == (
        "ncmec-test", ExchangeType.NCMEC, "ncmec", NCMEC, False, None
    )  # fmt: skip
    assert [e.name for e in store.list_exchanges()] == ["ncmec-test"]
    with pytest.raises(AlreadyExists, match="already exists"):
        store.add_exchange("ncmec-test", ExchangeType.NCMEC, "other", NCMEC)
    with pytest.raises(AlreadyExists, match="fed by exchange 'ncmec-test'"):
        store.add_exchange("second", ExchangeType.STOPNCII, "ncmec", NCMEC)
    with pytest.raises(NotFound):
        store.add_exchange("third", ExchangeType.NCMEC, "no-such-bank", NCMEC)
    with pytest.raises(BadParameter):
        store.add_exchange("bad name!", ExchangeType.NCMEC, "other", NCMEC)
    with pytest.raises(BadParameter, match="remove it first"):
        store.delete_bank("ncmec")
    assert store.set_exchange_paused("ncmec-test", True).paused
    assert not store.set_exchange_paused("ncmec-test", False).paused
    store.remove_exchange("ncmec-test")
    with pytest.raises(NotFound):
        store.get_exchange("ncmec-test")
    store.delete_bank("ncmec")  # unbound now


def test_a_page_commits_its_checkpoint_and_counts_with_its_entries(store: BankStore) -> None:
    store.add_exchange("x", ExchangeType.NCMEC, "ncmec", NCMEC)
    events = record_events("1", [(SignalType.PDQ, pdq(1))], label="A1", source="x/m")
    events += record_events("2", [(SignalType.MD5, b"\x02" * 16)], label="A2", source="x/m")
    report = store.import_entries("ncmec", events, progress=Progress("x", '{"p": 1}', 100.0))
    assert report.added == 2
    x = store.get_exchange("x")
    assert (x.checkpoint, x.status.upstream_time, x.status.added) == ('{"p": 1}', 100.0, 2)
    assert live(store) == {"1/pdq": (pdq(1), "A1", "x/m"), "2/md5": (b"\x02" * 16, "A2", "x/m")}
    # An update that drops a fingerprint, and a deletion; an older page time is ignored.
    events = record_events("1", [(SignalType.MD5, b"\x01" * 16)], label="A1", source="x/m")
    events += record_events("2", [], label=None, source="x/m")
    store.import_entries("ncmec", events, progress=Progress("x", '{"p": 2}', 50.0))
    x = store.get_exchange("x")
    assert (x.checkpoint, x.status.upstream_time) == ('{"p": 2}', 100.0)
    assert (x.status.added, x.status.removed) == (3, 2)
    assert live(store) == {"1/md5": (b"\x01" * 16, "A1", "x/m")}


def test_a_page_that_fails_leaves_no_entries_and_no_checkpoint(store: BankStore) -> None:
    store.add_exchange("x", ExchangeType.NCMEC, "ncmec", NCMEC)

    def broken() -> Iterator[NewEntry | Tombstone]:
        yield NewEntry(SignalType.PDQ, pdq(7), None, "7/pdq", "x")
        raise UpstreamError("connection reset mid-page", retry=True)

    with pytest.raises(UpstreamError):
        store.import_entries("ncmec", broken(), progress=Progress("x", '{"p": 9}'))
    assert live(store) == {}
    assert store.get_exchange("x").checkpoint is None
    # A checkpoint for an exchange that no longer feeds the bank rolls its page back.
    with pytest.raises(NotFound):
        store.import_entries(
            "other", [NewEntry(SignalType.PDQ, pdq(8))], progress=Progress("x", "{}")
        )
    assert live(store, "other") == {}


def test_runs_and_verdicts_for_upstream(store: BankStore) -> None:
    store.add_exchange("x", ExchangeType.NCMEC, "ncmec", NCMEC)
    store.record_run("x", error=None, skipped=2)
    store.record_run("x", error="HTTP 503 " + "e" * 1000, skipped=1)
    s = store.get_exchange("x").status
    assert s.last_success_at is not None and s.last_error_at is not None
    assert (s.skipped, s.errors, len(s.last_error or "")) == (3, 1, 500)
    bank_id = store.get_bank("ncmec").id
    verdict = UpstreamFeedback("1", SignalType.PDQ, pdq(1), Verdict.FALSE_POSITIVE)
    assert store.queue_feedback(bank_id, "acme", [verdict]) == 0  # feedback is opt-in
    store.remove_exchange("x")
    store.add_exchange("x", ExchangeType.NCMEC, "ncmec", _with_feedback())
    agreed = UpstreamFeedback("2", SignalType.MD5, b"\x02" * 16, Verdict.TRUE_POSITIVE)
    assert store.queue_feedback(bank_id, "acme", [verdict, verdict, agreed]) == 2  # once each
    assert store.queue_feedback(bank_id, "acme", [verdict]) == 0  # still waiting to go
    assert store.queue_feedback(store.get_bank("other").id, "acme", [verdict]) == 0
    queued = store.pending_feedback("x")
    assert [q.feedback for q in queued] == [verdict, agreed]
    assert store.get_exchange("x").status.feedback_pending == 2
    store.feedback_sent([queued[0].id], "HTTP 500")
    store.feedback_sent([queued[1].id], None)
    assert store.get_exchange("x").status.feedback_error == "HTTP 500"
    again = store.pending_feedback("x")
    assert [(q.id, q.attempts) for q in again] == [(queued[0].id, 1)]
    # The verdict last sent is not sent again; a changed one replaces the one waiting.
    assert store.queue_feedback(bank_id, "acme", [agreed]) == 0
    flipped = UpstreamFeedback("1", SignalType.PDQ, pdq(1), Verdict.TRUE_POSITIVE)
    assert store.queue_feedback(bank_id, "acme", [flipped]) == 1
    assert [q.feedback for q in store.pending_feedback("x")] == [flipped]
    # At most FEEDBACK_PER_DAY a tenant a day go upstream under the operator's account.
    many = [UpstreamFeedback(str(k), SignalType.PDQ, pdq(k), Verdict.FALSE_POSITIVE)
            for k in range(100, 300)]  # fmt: skip
    assert store.queue_feedback(bank_id, "acme", many) == FEEDBACK_PER_DAY - 2
    assert store.queue_feedback(bank_id, "globex", many[:5]) == 5


def _with_feedback() -> ExchangeSettings:
    return ExchangeSettings(
        environment="test-industry", credentials_env=("U", "P"), feedback_upstream=True
    )


def test_the_sync_lock_keeps_a_second_sync_out(
    store: BankStore, open_bank_store: BankOpener
) -> None:
    store.add_exchange("x", ExchangeType.NCMEC, "ncmec", NCMEC)
    other = open_bank_store()  # another process's connection, as near as one test gets
    try:
        with store.sync_lock("x") as mine:
            assert mine
            with other.sync_lock("x") as theirs:
                assert not theirs
            with other.sync_lock("y") as unrelated:
                assert unrelated
        with other.sync_lock("x") as theirs:
            assert theirs
    finally:
        other.close()


@dataclass
class ScriptedClient:
    """Pages from a list; fails with an upstream error at page `fail_at` (an exchange
    client's contract, without the wire: the wire's are tests/test_exchange_*.py)."""

    pages: list[list[NewEntry | Tombstone]]
    fail_at: int | None = None
    skipped: int = 0
    asked_from: list[str | None] = field(default_factory=list)
    sent: list[UpstreamFeedback] = field(default_factory=list)

    def fetch(self, checkpoint: str | None) -> Iterator[Page]:
        self.asked_from.append(checkpoint)
        start = 0 if checkpoint is None else int(checkpoint) + 1
        for k in range(start, len(self.pages)):
            if k == self.fail_at:
                raise UpstreamError("HTTP 503", retry=True, status=503)
            yield Page(self.pages[k], str(k), upstream_time=float(k))

    def send_feedback(self, items: Sequence[UpstreamFeedback]) -> None:
        self.sent.extend(items)

    def close(self) -> None:
        pass


def test_sync_resumes_after_the_last_committed_page(store: BankStore) -> None:
    x = store.add_exchange("x", ExchangeType.NCMEC, "ncmec", _with_feedback())
    pages: list[list[NewEntry | Tombstone]] = [
        record_events(str(i), [(SignalType.PDQ, pdq(i))], label="A1", source="x") for i in range(5)
    ]
    pages.append(record_events("0", [], label=None, source="x"))  # deleted upstream
    client = ScriptedClient(pages, fail_at=3)
    report = sync_exchange(store, x, client)
    assert (report.pages, report.added, report.error) == (3, 3, "HTTP 503")
    assert store.get_exchange("x").checkpoint == "2"
    assert store.get_exchange("x").status.errors == 1
    verdict = UpstreamFeedback("1", SignalType.PDQ, pdq(1), Verdict.FALSE_POSITIVE)
    store.queue_feedback(store.get_bank("ncmec").id, "acme", [verdict])
    client.fail_at = None
    report = sync_exchange(store, x, client)
    assert client.asked_from == [None, "2"]
    assert (report.pages, report.added, report.removed, report.error) == (3, 2, 1, None)
    assert sorted(live(store)) == ["1/pdq", "2/pdq", "3/pdq", "4/pdq"]
    assert client.sent == [verdict] and report.feedback_sent == 1
    assert store.pending_feedback("x") == []
    # --full: from the beginning again; the bank is the same afterwards.
    report = sync_exchange(store, x, client, full=True)
    assert client.asked_from[-1] is None and report.added == 0 and report.unchanged == 4
    assert sorted(live(store)) == ["1/pdq", "2/pdq", "3/pdq", "4/pdq"]
    with store.sync_lock("x"):
        assert sync_exchange(store, x, client).busy
    store.set_exchange_paused("x", True)
    with pytest.raises(BadParameter, match="paused"):
        sync_exchange(store, store.get_exchange("x"), client)


def test_a_response_no_client_foresaw_fails_that_run_only(store: BankStore) -> None:
    x = store.add_exchange("x", ExchangeType.NCMEC, "ncmec", NCMEC)

    class Broken(ScriptedClient):
        def fetch(self, checkpoint: str | None) -> Iterator[Page]:
            yield from super().fetch(checkpoint)
            raise RecursionError("a nested answer")

    pages: list[list[NewEntry | Tombstone]] = [
        record_events("1", [(SignalType.PDQ, pdq(1))], label="A1", source="x")
    ]
    report = sync_exchange(store, x, Broken(pages))
    assert report.pages == 1 and report.error == "internal error reading upstream (RecursionError)"
    s = store.get_exchange("x").status
    assert s.errors == 1 and s.last_error == report.error and s.added == 1
