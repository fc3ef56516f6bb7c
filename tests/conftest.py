"""Fixtures shared by the store contract suites: each runs against the embedded SQLite
store and against a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hashmatch.banks.store import BankStore
from hashmatch.tenancy.store import TenantStore
from tests import postgres


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.Cluster]:
    with postgres.cluster() as c:
        yield c


BankOpener = Callable[[], BankStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_bank_store(request: pytest.FixtureRequest, tmp_path: Path) -> BankOpener:
    """Opens a store on one database (a new one per test); each call a new connection."""
    if request.param == "sqlite":
        from hashmatch.banks.sqlite_store import SqliteBankStore

        path = tmp_path / "banks.sqlite3"
        return lambda: SqliteBankStore(path)
    from hashmatch.banks.entry_partitions import PartitionPolicy
    from hashmatch.banks.postgres_store import PostgresBankStore

    url = request.getfixturevalue("pg_cluster").new_database()
    # First loads of two entries or more get partitions of their own (up to the cap) and
    # single entries the shared one: the contract holds on both paths.
    policy = PartitionPolicy(rows=2, max_partitions=3)
    return lambda: PostgresBankStore(url, pool_size=2, partitions=policy)


TenantOpener = Callable[[], TenantStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_tenant_store(request: pytest.FixtureRequest, tmp_path: Path) -> TenantOpener:
    """Opens a tenant store on one database (a new one per test)."""
    if request.param == "sqlite":
        from hashmatch.tenancy.sqlite_store import SqliteTenantStore

        path = tmp_path / "t.sqlite3"
        return lambda: SqliteTenantStore(path)
    from hashmatch.tenancy.postgres_store import PostgresTenantStore

    url = request.getfixturevalue("pg_cluster").new_database()
    return lambda: PostgresTenantStore(url, pool_size=4)
