"""The vpdq tables in the bank store's SQLite file (created here, beside the bank tables)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from hashmatch.storage.sqlite import read_transaction, write_transaction
from hashmatch.video.store import VPDQ_SOURCE, VideoRow

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


class SqliteVideoTables:
    def __init__(self, path: Path | str, *, timeout_s: float = 30.0) -> None:
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

    def save_video(
        self, bank_id: int, label: str | None, external_id: str | None, blob: bytes,
        digest: bytes, n_frames: int, duration: float, now: str, entry_ids: Iterable[int],
    ) -> int:  # fmt: skip
        with self._write() as db:
            row = db.execute(
                "SELECT id FROM vpdq_videos WHERE bank_id = ? AND digest = ?", (bank_id, digest)
            ).fetchone()
            if row is None:
                cur = db.execute(
                    "INSERT INTO vpdq_videos (bank_id, label, external_id, frames, digest,"
                    " n_frames, duration, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (bank_id, label, external_id, blob, digest, n_frames, duration, now),
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
                ((video_id, eid) for eid in entry_ids),
            )
        return video_id

    def orphan_frame_values(self, bank_id: int, cutoff: str) -> list[bytes]:
        with self._read() as db:
            rows = db.execute(
                "SELECT e.value FROM entries e WHERE e.bank_id = ? AND e.source = ?"
                " AND e.signal_type = 'pdq' AND e.removed_at IS NULL AND e.added_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM vpdq_frames f JOIN vpdq_videos v"
                "  ON v.id = f.video_id WHERE f.entry_id = e.id AND v.removed_at IS NULL)",
                (bank_id, VPDQ_SOURCE, cutoff),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def tombstone_video(self, bank_id: int, video_id: int, now: str) -> list[int] | None:
        with self._write() as db:
            cur = db.execute(
                "UPDATE vpdq_videos SET removed_at = ? WHERE id = ? AND bank_id = ?"
                " AND removed_at IS NULL",
                (now, video_id, bank_id),
            )
            if cur.rowcount == 0:
                return None
            return [
                r[0]
                for r in db.execute(
                    "SELECT f.entry_id FROM vpdq_frames f WHERE f.video_id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM vpdq_frames g JOIN vpdq_videos v ON v.id = g.video_id"
                    "  WHERE g.entry_id = f.entry_id AND v.removed_at IS NULL)",
                    (video_id,),
                )
            ]

    def video_ids(self, bank_id: int, after_id: int, limit: int) -> list[int]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM vpdq_videos WHERE bank_id = ? AND removed_at IS NULL AND id > ?"
                " ORDER BY id LIMIT ?",
                (bank_id, after_id, limit),
            ).fetchall()
        return [r[0] for r in rows]

    def _chunks(self, sql: str, ids: Sequence[int]) -> list[tuple[object, ...]]:
        """sql with `{marks}` for an IN list, run over ids in chunks (SQLite's limit)."""
        out: list[tuple[object, ...]] = []
        with self._read() as db:
            for lo in range(0, len(ids), _IN_CHUNK):
                part = [int(i) for i in ids[lo : lo + _IN_CHUNK]]
                out += db.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall()
        return out

    def rows(self, ids: Sequence[int]) -> list[VideoRow]:
        return self._chunks(  # type: ignore[return-value]
            "SELECT id, bank_id, label, external_id, n_frames, duration, added_at"
            " FROM vpdq_videos WHERE id IN ({marks}) AND removed_at IS NULL",
            ids,
        )

    def frame_blobs(self, ids: Sequence[int]) -> list[tuple[int, bytes]]:
        got = self._chunks(
            "SELECT id, frames FROM vpdq_videos WHERE id IN ({marks}) AND removed_at IS NULL", ids
        )
        return [(int(i), bytes(b)) for i, b in got]  # type: ignore[call-overload]

    def videos_of(self, entry_ids: Sequence[int]) -> list[tuple[int, int]]:
        got = self._chunks(
            "SELECT f.entry_id, f.video_id FROM vpdq_frames f JOIN vpdq_videos v"
            " ON v.id = f.video_id WHERE f.entry_id IN ({marks})"
            " AND v.removed_at IS NULL ORDER BY f.video_id",
            entry_ids,
        )
        return [(int(e), int(v)) for e, v in got]  # type: ignore[call-overload]
