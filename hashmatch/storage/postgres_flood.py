"""Flood quarantine in the PostgreSQL database: an entry suspended through one replica is
suspended on every replica (each re-reads the suspended set within a second), and the
distinct contents an entry matched are counted across replicas (each sends what it saw
once a second: traffic spread over N replicas is flagged as it would be on one).

Sightings keep a short keyed digest of the content, not its MD5 or hash (which could be
looked up in a list), and only for the window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hashmatch.storage.flood_store import LISTING_KEYS, Sighting
from hashmatch.storage.postgres import connection, lock_id, open_migrated, read_transaction

_LOCK = lock_id("flood")
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE flagged (
            entry_id BIGINT PRIMARY KEY,
            bank TEXT NOT NULL,
            distinct_content INTEGER NOT NULL,
            window_s DOUBLE PRECISION NOT NULL,
            suspended INTEGER NOT NULL,
            flagged_at TEXT NOT NULL,
            released_at TEXT
        )""",
    ),
    (
        """CREATE TABLE flood_sightings (
            entry_id BIGINT NOT NULL,
            tenant TEXT NOT NULL,
            content BYTEA NOT NULL,
            seen_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (entry_id, tenant, content)
        )""",
        "CREATE INDEX flood_sightings_seen ON flood_sightings (seen_at)",
    ),
)


class PostgresFloodStore:
    def __init__(self, url: str) -> None:
        self._pool = open_migrated(
            url, _LOCK, "the flood table", MIGRATIONS, table="flood_schema_version",
            pool_size=2,
        )  # fmt: skip

    def flag(self, entry_id: int, bank: str, distinct: int, window_s: float, suspend: bool) -> None:
        with connection(self._pool) as db:
            db.execute(
                "INSERT INTO flagged VALUES (%s, %s, %s, %s, %s, %s, NULL) ON CONFLICT (entry_id)"
                " DO UPDATE SET distinct_content = excluded.distinct_content,"
                " suspended = excluded.suspended, flagged_at = excluded.flagged_at,"
                " released_at = NULL",
                (entry_id, bank, distinct, window_s, int(suspend), datetime.now(UTC).isoformat()),
            )

    def release(self, entry_id: int) -> bool:
        with connection(self._pool) as db:
            cur = db.execute(
                "UPDATE flagged SET released_at = %s WHERE entry_id = %s AND released_at IS NULL",
                (datetime.now(UTC).isoformat(), entry_id),
            )
            return cur.rowcount > 0

    def suspended(self) -> set[int]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT entry_id FROM flagged WHERE suspended = 1 AND released_at IS NULL"
            ).fetchall()
        return {int(r[0]) for r in rows}

    def listing(self) -> list[dict[str, Any]]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                f"SELECT {', '.join(LISTING_KEYS)} FROM flagged ORDER BY flagged_at"
            ).fetchall()
        return [dict(zip(LISTING_KEYS, r, strict=True)) for r in rows]

    def count_sightings(
        self, sightings: Sequence[Sighting], window_s: float, per_tenant: int
    ) -> dict[int, int]:
        window = {"w": window_s}
        with connection(self._pool) as db:
            db.execute(
                "DELETE FROM flood_sightings"
                " WHERE seen_at < clock_timestamp() - make_interval(secs => %(w)s)",
                window,
            )
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO flood_sightings VALUES (%s, %s, %s, clock_timestamp())"
                    " ON CONFLICT (entry_id, tenant, content)"
                    " DO UPDATE SET seen_at = excluded.seen_at",
                    sightings,
                )
            rows = db.execute(
                "SELECT entry_id, sum(least(n, %(cap)s)) FROM (SELECT entry_id, tenant,"
                " count(*) AS n FROM flood_sightings WHERE entry_id = ANY(%(ids)s)"
                " GROUP BY entry_id, tenant) t GROUP BY entry_id",
                {"cap": per_tenant, "ids": sorted({s[0] for s in sightings})},
            ).fetchall()
        return {int(e): int(n) for e, n in rows}

    def close(self) -> None:
        self._pool.close()
