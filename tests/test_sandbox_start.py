"""The public Test bank made on a first start, by exactly one of the replicas that start
at once on a new database (the others lose the race to create it and carry on)."""

from __future__ import annotations

import threading

from hashmatch.banks.model import Bank
from hashmatch.banks.store import BankStore
from hashmatch.config import EngineConfig
from hashmatch.core.sandbox import ensure_sandbox
from hashmatch.errors import NotFound
from hashmatch.matching.model import SANDBOX_BANK
from tests.conftest import BankOpener


class ReadBeforeTheOtherCommitted:
    """A store whose first read of the Test bank comes before another replica's commit."""

    def __init__(self, store: BankStore) -> None:
        self._store = store
        self._stale = True

    def get_bank(self, name: str) -> Bank:
        if self._stale and name == SANDBOX_BANK:
            self._stale = False
            raise NotFound(f"no bank named {name!r}")
        return self._store.get_bank(name)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_the_replica_that_loses_the_race_to_make_the_test_bank_starts(
    open_bank_store: BankOpener,
) -> None:
    first, second = open_bank_store(), open_bank_store()
    try:
        assert ensure_sandbox(first, EngineConfig())
        entries = first.count_entries(SANDBOX_BANK)
        late = ReadBeforeTheOtherCommitted(second)
        assert not ensure_sandbox(late, EngineConfig())  # type: ignore[arg-type]
        assert second.count_entries(SANDBOX_BANK) == entries  # written once
    finally:
        first.close()
        second.close()


def test_replicas_starting_at_once_make_one_test_bank(open_bank_store: BankOpener) -> None:
    stores = [open_bank_store() for _ in range(3)]
    made: list[bool] = []
    failures: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def boot(store: BankStore) -> None:
        start.wait()
        try:
            made.append(ensure_sandbox(store, EngineConfig()))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=boot, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures and sorted(made) == [False, False, True]
        assert [b.name for b in stores[0].list_banks()].count(SANDBOX_BANK) == 1
    finally:
        for s in stores:
            s.close()
