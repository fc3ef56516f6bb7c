"""The audit chain in the PostgreSQL database: one chain that every replica appends to.

Appends take the chain's advisory lock, so writers link one after another and the chain
stays linear; the signed head is updated in the same transaction (no replica's file can
name the whole chain). Each replica still signs the head it wrote last into its data dir
as well: a database writer who cuts the tail and puts back an older signed head is caught
by any replica whose own head is newer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hashmatch.audit.tables import GENESIS, ChainView, Links, Signer
from hashmatch.storage.postgres import (
    lock_id,
    open_migrated,
    read_transaction,
    write_transaction,
)

_LOCK = lock_id("audit")
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE audit (
            seq BIGINT PRIMARY KEY,
            ts TEXT NOT NULL,
            record TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX audit_ts ON audit (ts)",
        """CREATE TABLE audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            mac TEXT NOT NULL
        )""",
        """CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            mac TEXT NOT NULL
        )""",
        "CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO audit_meta VALUES ('keyed_from', '1')",
    ),
)
PAGE = 10_000  # rows a reading cursor fetches at a time


class PostgresAuditTables:
    shared = True

    def __init__(self, url: str) -> None:
        self._pool = open_migrated(
            url, _LOCK, "the audit tables", MIGRATIONS, table="audit_schema_version",
            pool_size=2,
        )  # fmt: skip

    def append(self, links: Links, sign_head: Signer) -> tuple[int, str]:
        with write_transaction(self._pool, _LOCK) as db:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                row = db.execute("SELECT seq, hash FROM audit_anchor").fetchone()
            seq, prev = (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)
            rows = links(seq, prev)
            if not rows:
                return seq, prev
            with db.cursor().copy(
                "COPY audit (seq, ts, record, prev_hash, hash) FROM STDIN"
            ) as copy:
                for r in rows:
                    copy.write_row(r)
            end, digest = rows[-1][0], rows[-1][4]
            db.execute(
                "INSERT INTO audit_head VALUES (1, %(s)s, %(h)s, %(m)s) ON CONFLICT (id)"
                " DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
                {"s": end, "h": digest, "m": sign_head(end, digest)},
            )
        return end, digest

    def claim_key(self, fingerprint: str) -> str:
        with write_transaction(self._pool, _LOCK) as db:
            db.execute(
                "INSERT INTO audit_meta VALUES ('key_id', %s) ON CONFLICT DO NOTHING",
                (fingerprint,),
            )
            row = db.execute("SELECT value FROM audit_meta WHERE key = 'key_id'").fetchone()
        assert row is not None
        return str(row[0])

    @contextmanager
    def view(self) -> Iterator[ChainView]:
        with read_transaction(self._pool, consistent=True) as db:
            keyed = db.execute("SELECT value FROM audit_meta WHERE key = 'keyed_from'").fetchone()
            anchor = db.execute("SELECT seq, hash, mac FROM audit_anchor").fetchone()
            head = db.execute("SELECT seq, hash, mac FROM audit_head").fetchone()
            with db.cursor(name="audit_rows") as cur:
                cur.itersize = PAGE
                cur.execute("SELECT seq, ts, record, prev_hash, hash FROM audit ORDER BY seq")
                yield ChainView(
                    (int(anchor[0]), anchor[1], anchor[2]) if anchor else None,
                    int(keyed[0]) if keyed else 1,
                    (int(head[0]), head[1], head[2]) if head else None,
                    iter(cur),
                )

    def prune(self, cutoff: str, sign_anchor: Signer) -> int:
        with write_transaction(self._pool, _LOCK) as db:
            last = db.execute(
                "SELECT seq, hash FROM audit WHERE ts < %s ORDER BY seq DESC LIMIT 1", (cutoff,)
            ).fetchone()
            if last is None:
                return 0
            seq, digest = int(last[0]), str(last[1])
            n = db.execute("DELETE FROM audit WHERE seq <= %s", (seq,)).rowcount
            db.execute(
                "INSERT INTO audit_anchor VALUES (1, %(s)s, %(h)s, %(m)s) ON CONFLICT (id)"
                " DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac",
                {"s": seq, "h": digest, "m": sign_anchor(seq, digest)},
            )
        return int(n)

    def records(self, start: str, end: str) -> Iterator[tuple[str, str]]:
        with (
            read_transaction(self._pool, consistent=True) as db,
            db.cursor(name="audit_records") as cur,
        ):
            cur.itersize = PAGE
            cur.execute(
                "SELECT ts, record FROM audit WHERE ts >= %s AND ts < %s ORDER BY seq",
                (start, end),
            )
            yield from cur

    def close(self) -> None:
        self._pool.close()
