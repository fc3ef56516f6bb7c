"""The vpdq tables in the PostgreSQL banks database (created by its migrations,
banks/postgres_store.py); writes take the banks' writer lock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hashmatch.banks.postgres_store import LOCK
from hashmatch.storage.postgres import open_pool, read_transaction, write_transaction
from hashmatch.video.store import VPDQ_SOURCE, VideoRow


class PostgresVideoTables:
    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self._pool = open_pool(url, pool_size)

    def close(self) -> None:
        self._pool.close()

    def save_video(
        self, bank_id: int, label: str | None, external_id: str | None, blob: bytes,
        digest: bytes, n_frames: int, duration: float, now: str, entry_ids: Iterable[int],
    ) -> int:  # fmt: skip
        with write_transaction(self._pool, LOCK) as db:
            row = db.execute(
                "INSERT INTO vpdq_videos (bank_id, label, external_id, frames, digest,"
                " n_frames, duration, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (bank_id, digest) DO UPDATE SET label = excluded.label,"
                " external_id = excluded.external_id, removed_at = NULL RETURNING id",
                (bank_id, label, external_id, blob, digest, n_frames, duration, now),
            ).fetchone()
            assert row is not None
            video_id = int(row[0])
            db.execute(
                "INSERT INTO vpdq_frames (video_id, entry_id) SELECT %s, unnest(%s::bigint[])"
                " ON CONFLICT DO NOTHING",
                (video_id, [int(i) for i in entry_ids]),
            )
        return video_id

    def orphan_frame_values(self, bank_id: int, cutoff: str) -> list[bytes]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT e.value FROM entries e WHERE e.bank_id = %s AND e.source = %s"
                " AND e.signal_type = 'pdq' AND e.removed_at IS NULL AND e.added_at < %s"
                " AND NOT EXISTS (SELECT 1 FROM vpdq_frames f JOIN vpdq_videos v"
                "  ON v.id = f.video_id WHERE f.entry_id = e.id AND v.removed_at IS NULL)",
                (bank_id, VPDQ_SOURCE, cutoff),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def tombstone_video(self, bank_id: int, video_id: int, now: str) -> list[int] | None:
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                "UPDATE vpdq_videos SET removed_at = %s WHERE id = %s AND bank_id = %s"
                " AND removed_at IS NULL",
                (now, video_id, bank_id),
            )
            if cur.rowcount == 0:
                return None
            rows = db.execute(
                "SELECT f.entry_id FROM vpdq_frames f WHERE f.video_id = %s AND NOT EXISTS"
                " (SELECT 1 FROM vpdq_frames g JOIN vpdq_videos v ON v.id = g.video_id"
                "  WHERE g.entry_id = f.entry_id AND v.removed_at IS NULL)",
                (video_id,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def video_ids(self, bank_id: int, after_id: int, limit: int) -> list[int]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT id FROM vpdq_videos WHERE bank_id = %s AND removed_at IS NULL"
                " AND id > %s ORDER BY id LIMIT %s",
                (bank_id, after_id, limit),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def rows(self, ids: Sequence[int]) -> list[VideoRow]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT id, bank_id, label, external_id, n_frames, duration, added_at"
                " FROM vpdq_videos WHERE id = ANY(%s) AND removed_at IS NULL",
                ([int(i) for i in ids],),
            ).fetchall()
        return [(int(r[0]), int(r[1]), r[2], r[3], int(r[4]), float(r[5]), r[6]) for r in rows]

    def frame_blobs(self, ids: Sequence[int]) -> list[tuple[int, bytes]]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT id, frames FROM vpdq_videos WHERE id = ANY(%s) AND removed_at IS NULL",
                ([int(i) for i in ids],),
            ).fetchall()
        return [(int(i), bytes(b)) for i, b in rows]

    def videos_of(self, entry_ids: Sequence[int]) -> list[tuple[int, int]]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT f.entry_id, f.video_id FROM vpdq_frames f JOIN vpdq_videos v"
                " ON v.id = f.video_id WHERE f.entry_id = ANY(%s) AND v.removed_at IS NULL"
                " ORDER BY f.video_id",
                ([int(i) for i in entry_ids],),
            ).fetchall()
        return [(int(e), int(v)) for e, v in rows]
