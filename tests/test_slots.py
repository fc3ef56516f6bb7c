"""Calls that hold a whole list while they run (console imports, exports): a few at once per
tenant and in all, refused past them as RESOURCE_EXHAUSTED, freed however the call ends."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hashmatch.banks.formats import Format
from hashmatch.banks.model import BankSettings
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.console.imports import ImportJobs
from hashmatch.core.banks import BankOps
from hashmatch.core.calls import CallRecorder
from hashmatch.core.slots import TenantSlots
from hashmatch.errors import Overloaded
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import OPERATOR_TENANT, Principal, Role


def test_slots_per_tenant_and_in_all() -> None:
    slots = TenantSlots("exports", per_tenant=2, total=3)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(Overloaded, match="at most 2 exports at once per tenant"):
        slots.acquire("a")
    slots.acquire("b")
    with pytest.raises(Overloaded, match="at most 3 exports at once on this server"):
        slots.acquire("c")
    slots.release("a")
    with pytest.raises(RuntimeError), slots.held("c"):  # freed when the call fails too
        raise RuntimeError
    slots.acquire("c")  # its slot came back
    with pytest.raises(Overloaded):
        slots.acquire("d")


def test_console_imports_running_at_once_are_bounded(tmp_path: Path) -> None:
    store = SqliteBankStore(tmp_path / "banks.sqlite3")
    store.create_bank("b", BankSettings())
    ops = BankOps(store, BankAccess(store))
    go = threading.Event()
    real = ops.import_path

    def held_import(*args: object, **kw: object) -> object:
        go.wait(60)
        return real(*args, **kw)  # type: ignore[arg-type]

    ops.import_path = held_import  # type: ignore[method-assign]
    jobs = ImportJobs(ops, CallRecorder(None))
    operator = Principal(OPERATOR_TENANT, frozenset(Role), key_id="k")
    rows = b"".join(f"{i:064x}\n".encode() for i in range(1, 11))
    running = [jobs.start(operator, "b", rows, Format.CSV) for _ in range(2)]
    with pytest.raises(Overloaded, match="console imports"):
        jobs.start(operator, "b", rows, Format.CSV)
    go.set()
    assert all(j.finished.wait(60) for j in running)
    again = jobs.start(operator, "b", rows, Format.CSV)  # the slots came back
    assert again.finished.wait(60) and again.to_json()["state"] == "done"
    store.close()
