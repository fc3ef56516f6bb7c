"""Video bank entries (vpdq): a video's frame list stored compactly, its frames' PDQ
hashes in the PDQ index with a back-reference to the video.

The tables live in the bank store's SQLite file, beside the bank tables and created here
(vpdq_*), so the bank store's own schema and migrations stay untouched:
- vpdq_videos: one row per video entry: bank, label, external id, the VideoHash in its
  compact form (41 bytes a frame) and a digest of it (adding the same video twice to a
  bank is idempotent).
- vpdq_frames: video -> PDQ entry (the back-reference). Each distinct frame hash of
  quality >= the index quality is written as an ordinary PDQ entry of the bank (source
  "vpdq") through BankStore.write_entries, so it reaches the matcher's PDQ index through
  the change log like any entry, and one query frame (or image) finds every video that
  contains it. Frame hashes already in the bank (an image entry, another video) are
  shared, never rewritten.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from hashmatch.banks.model import NewEntry, SignalType
from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter, NotFound
from hashmatch.storage.sqlite import read_transaction, write_transaction
from hashmatch.video.features import VideoHash

VPDQ_SOURCE = "vpdq"
_IN_CHUNK = 900
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS vpdq_videos (
        id INTEGER PRIMARY KEY,
        bank_id INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
        label TEXT,
        external_id TEXT,
        frames BLOB NOT NULL,
        digest BLOB NOT NULL,
        n_frames INTEGER NOT NULL,
        duration REAL NOT NULL,
        added_at TEXT NOT NULL,
        removed_at TEXT,
        UNIQUE (bank_id, digest)
    )""",
    """CREATE TABLE IF NOT EXISTS vpdq_frames (
        video_id INTEGER NOT NULL REFERENCES vpdq_videos (id) ON DELETE CASCADE,
        entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        PRIMARY KEY (video_id, entry_id)
    )""",
    """CREATE INDEX IF NOT EXISTS vpdq_frames_entry ON vpdq_frames (entry_id)""",
)


@dataclass(frozen=True)
class VideoEntry:
    id: int
    bank_id: int
    label: str | None
    external_id: str | None
    n_frames: int
    duration: float
    added_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "external_id": self.external_id,
            "frames": self.n_frames,
            "duration": round(self.duration, 3),
            "added_at": self.added_at,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VideoStore:
    """vpdq entries over the bank store's SQLite file (see the module docstring)."""

    def __init__(self, path: Path | str, banks: BankStore, *, timeout_s: float = 30.0) -> None:
        self.banks = banks
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            Path(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return read_transaction(self._db, self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -------------------------------------------------------------------------
    def add_video(
        self,
        bank: str,
        video: VideoHash,
        label: str | None = None,
        external_id: str | None = None,
        index_quality: int = 50,
    ) -> VideoEntry:
        """Adds a video entry (idempotent per bank and frame list) and indexes its distinct
        frame hashes of quality >= index_quality as PDQ entries of the bank.

        Two transactions (the bank store writes the frame entries, then this store the
        video): a crash between leaves frame entries without a video, which a retry of the
        same add adopts, and sweep_orphans removes later (`video-bank add` and server
        start run it; not here, where it would scan the bank once per video)."""
        if not len(video):
            raise BadParameter("a video entry needs at least one frame")
        b = self.banks.get_bank(bank)
        keep = video.quality >= index_quality
        distinct = np.unique(video.hashes[keep], axis=0)
        values = [bytes(h) for h in distinct]
        present = self._live_in_bank(b.id, values)
        new = [v for v in values if v not in present]
        if new:
            self.banks.write_entries(
                bank,
                (NewEntry(SignalType.PDQ, v, label=label, source=VPDQ_SOURCE) for v in new),
            )
        ids = self._live_in_bank(b.id, values)
        blob = video.to_bytes()
        digest = hashlib.sha256(blob).digest()
        now = _now()
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM vpdq_videos WHERE bank_id = ? AND digest = ?", (b.id, digest)
            ).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO vpdq_videos (bank_id, label, external_id, frames, digest,"
                    " n_frames, duration, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (b.id, label, external_id, blob, digest, len(video), video.duration, now),
                )
                video_id = int(cur.lastrowid or 0)
            else:
                video_id = int(row[0])
                db.execute(
                    "UPDATE vpdq_videos SET label = ?, external_id = ?, removed_at = NULL"
                    " WHERE id = ?",
                    (label, external_id, video_id),
                )
            db.executemany(
                "INSERT OR IGNORE INTO vpdq_frames (video_id, entry_id) VALUES (?, ?)",
                ((video_id, eid) for eid in ids.values()),
            )
        return self.get_entries([video_id])[video_id]

    def sweep_orphans(self, bank: str | None = None, older_than_s: float = 600.0) -> int:
        """Removes frame entries (source vpdq) that no live video refers to, older than
        older_than_s: what a crash between add_video's two transactions (frame entries
        first, then the video) leaves behind. Younger ones may be an add in progress in
        another process. All banks when bank is None; returns how many were removed."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        names = [bank] if bank is not None else [b.name for b in self.banks.list_banks()]
        removed = 0
        for name in names:
            b = self.banks.get_bank(name)
            with self._read() as db:
                rows = db.execute(
                    "SELECT e.value FROM entries e WHERE e.bank_id = ? AND e.source = ?"
                    " AND e.signal_type = 'pdq' AND e.removed_at IS NULL AND e.added_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM vpdq_frames f JOIN vpdq_videos v"
                    "  ON v.id = f.video_id WHERE f.entry_id = e.id AND v.removed_at IS NULL)",
                    (b.id, VPDQ_SOURCE, cutoff),
                ).fetchall()
            if rows:
                removed += self.banks.remove_entries(
                    name, [(SignalType.PDQ, bytes(r[0])) for r in rows]
                )
        return removed

    def remove_video(self, bank: str, video_id: int) -> None:
        """Tombstones a video entry, and the PDQ entries only it brought (source vpdq, no
        other live video refers to them)."""
        b = self.banks.get_bank(bank)
        with self._write() as db:
            cur = db.execute(
                "UPDATE vpdq_videos SET removed_at = ? WHERE id = ? AND bank_id = ?"
                " AND removed_at IS NULL",
                (_now(), video_id, b.id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no video entry {video_id} in bank {bank!r}")
            orphans = [
                r[0]
                for r in db.execute(
                    "SELECT f.entry_id FROM vpdq_frames f WHERE f.video_id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM vpdq_frames g JOIN vpdq_videos v ON v.id = g.video_id"
                    "  WHERE g.entry_id = f.entry_id AND v.removed_at IS NULL)",
                    (video_id,),
                )
            ]
        entries = self.banks.entries_by_id(orphans)
        values = [
            (SignalType.PDQ, e.value)
            for e in entries.values()
            if e.source == VPDQ_SOURCE and e.removed_at is None
        ]
        if values:
            self.banks.remove_entries(bank, values)

    # -- reading -------------------------------------------------------------------------
    def _live_in_bank(self, bank_id: int, values: Sequence[bytes]) -> dict[bytes, int]:
        found = self.banks.lookup(SignalType.PDQ, values)
        entries = self.banks.entries_by_id([i for ids in found for i in ids])
        out: dict[bytes, int] = {}
        for v, ids in zip(values, found, strict=True):
            for i in ids:
                e = entries.get(i)
                if e is not None and e.bank_id == bank_id and e.removed_at is None:
                    out[v] = i
        return out

    def list_videos(self, bank: str, after_id: int = 0, limit: int = 1000) -> list[VideoEntry]:
        b = self.banks.get_bank(bank)
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM vpdq_videos WHERE bank_id = ? AND removed_at IS NULL AND id > ?"
                " ORDER BY id LIMIT ?",
                (b.id, after_id, limit),
            ).fetchall()
        entries = self.get_entries([r[0] for r in rows])
        return [entries[r[0]] for r in rows]

    def get_entries(self, ids: Sequence[int]) -> dict[int, VideoEntry]:
        out: dict[int, VideoEntry] = {}
        with self._read() as db:
            for lo in range(0, len(ids), _IN_CHUNK):
                part = list(ids[lo : lo + _IN_CHUNK])
                marks = ",".join("?" * len(part))
                for r in db.execute(
                    "SELECT id, bank_id, label, external_id, n_frames, duration, added_at"
                    f" FROM vpdq_videos WHERE id IN ({marks}) AND removed_at IS NULL",
                    part,
                ):
                    out[r[0]] = VideoEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
        return out

    def frames(self, ids: Sequence[int]) -> dict[int, VideoHash]:
        """The frame lists of live video entries."""
        out: dict[int, VideoHash] = {}
        with self._read() as db:
            for lo in range(0, len(ids), _IN_CHUNK):
                part = list(ids[lo : lo + _IN_CHUNK])
                marks = ",".join("?" * len(part))
                for r in db.execute(
                    f"SELECT id, frames FROM vpdq_videos WHERE id IN ({marks})"
                    " AND removed_at IS NULL",
                    part,
                ):
                    out[r[0]] = VideoHash.from_bytes(bytes(r[1]))
        return out

    def videos_of_entries(self, entry_ids: Sequence[int]) -> dict[int, list[int]]:
        """The back-reference: PDQ entry id -> ids of the live videos holding that frame."""
        out: dict[int, list[int]] = {}
        with self._read() as db:
            for lo in range(0, len(entry_ids), _IN_CHUNK):
                part = list(entry_ids[lo : lo + _IN_CHUNK])
                marks = ",".join("?" * len(part))
                for eid, vid in db.execute(
                    "SELECT f.entry_id, f.video_id FROM vpdq_frames f JOIN vpdq_videos v"
                    f" ON v.id = f.video_id WHERE f.entry_id IN ({marks})"
                    " AND v.removed_at IS NULL ORDER BY f.video_id",
                    part,
                ):
                    out.setdefault(eid, []).append(vid)
        return out
