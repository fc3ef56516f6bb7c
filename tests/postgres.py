"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a cluster made
by initdb in a temporary folder, run as an unprivileged user (PostgreSQL refuses root:
`nobody` when the tests run as root), listening on a free loopback port with trust auth
for local connections only. One cluster per test session; each test gets a database of
its own.

Skips where the binaries are absent, unless HASHMATCH_REQUIRE_POSTGRES is set (CI).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def server_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))  # fmt: skip
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], int | None, int | None]:
    """How to run the server's binaries: as ourselves, or (as root) as `nobody`."""
    if os.geteuid() != 0:
        return [], None, None
    nobody = pwd.getpwnam("nobody")
    return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups", "--"], nobody.pw_uid, nobody.pw_gid  # fmt: skip


@dataclass
class Cluster:
    root: Path
    port: int
    bin: Path
    _prefix: list[str]
    _options: str = ""
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://hashmatch@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._prefix, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        self.pg_ctl("-o", self._options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "-l", str(self.root / "server.log"), "-w", "restart")


@contextlib.contextmanager
def cluster(fsync: bool = False) -> Iterator[Cluster]:
    """fsync off for tests (nothing here must survive a power cut); on for benchmarks."""
    bin_dir = server_bin()
    if bin_dir is None:
        if os.environ.get("HASHMATCH_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's server is missing (HASHMATCH_REQUIRE_POSTGRES is set)")
        pytest.skip("PostgreSQL's server is not installed (Debian: postgresql)")
    prefix, uid, gid = _as_user()
    with tempfile.TemporaryDirectory(prefix="hashmatch-pg-") as tmp:
        root = Path(tmp)
        if uid is not None and gid is not None:
            os.chown(root, uid, gid)
        port = _free_port()
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "hashmatch",
             "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        durable = "on" if fsync else "off"
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync={durable}"
            " -c max_connections=200"
        )
        c = Cluster(root, port, bin_dir, prefix, options)
        c.start()
        try:
            yield c
        finally:
            with contextlib.suppress(subprocess.SubprocessError):
                c.pg_ctl("-m", "immediate", "-w", "stop")
