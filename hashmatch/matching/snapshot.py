"""The bank matcher's snapshot: its IndexSet at one sequence number, in one file.

Checked against the store before use (same database, not ahead of it); anything off and
the matcher is rebuilt from the store instead. The file format (atomic write, CRC) is
hashmatch.index.snapshot's.
"""

from __future__ import annotations

from pathlib import Path

from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter
from hashmatch.index.snapshot import SnapshotError, read_snapshot, write_snapshot
from hashmatch.matching.indexes import IndexConfig, IndexSet

SNAPSHOT_FORMAT = "hashmatch-matcher-2"


def save_snapshot(path: Path, store_id: str, indexes: IndexSet) -> None:
    """Atomically (temp file + os.replace); the caller holds the state still."""
    header = {"format": SNAPSHOT_FORMAT, "store_id": store_id, "sequence": indexes.sequence}
    write_snapshot(path, header, indexes.arrays())


def load_snapshot(path: Path, store: BankStore, config: IndexConfig) -> IndexSet:
    """The IndexSet a snapshot holds, or SnapshotError saying why it cannot be used."""
    header, arrays = read_snapshot(path)
    if header.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError("snapshot of another format")
    if header.get("store_id") != store.store_id:
        raise SnapshotError("snapshot of another database")
    seq = header.get("sequence")
    if not isinstance(seq, int) or seq > store.current_sequence():
        raise SnapshotError("snapshot ahead of the database (restored from a backup?)")
    try:
        return IndexSet.from_arrays(arrays, seq, config)
    except (KeyError, BadParameter, ValueError) as exc:
        raise SnapshotError(f"snapshot arrays unusable ({type(exc).__name__})") from None
