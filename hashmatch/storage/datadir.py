"""Where the bank commands keep their data: one folder, one SQLite file, one snapshot."""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.config import IndexChoice
from hashmatch.matching.bank_matcher import MatcherConfig
from hashmatch.tenancy.sqlite_store import SqliteTenantStore

DEFAULT_DATA_DIR = "./hashmatch-data"
STORE_FILE = "banks.sqlite3"
SNAPSHOT_FILE = "index.snapshot"
TENANTS_FILE = "tenants.sqlite3"  # tenants and API key hashes, apart from the banks
OPERATOR_KEY_FILE = "operator.key"  # written by `hashmatch admin bootstrap` (mode 0600)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DEFAULT_DATA_DIR),
        metavar="DIR",
        help=f"folder of the bank database and index snapshot (default {DEFAULT_DATA_DIR})",
    )


def open_store(data_dir: Path) -> SqliteBankStore:
    return SqliteBankStore(data_dir / STORE_FILE)


def matcher_config(data_dir: Path, pdq_index: IndexChoice = IndexChoice.MIH) -> MatcherConfig:
    return MatcherConfig(snapshot_path=data_dir / SNAPSHOT_FILE, pdq_index=pdq_index)


def open_tenants(data_dir: Path) -> SqliteTenantStore:
    return SqliteTenantStore(data_dir / TENANTS_FILE)
