"""Starts `hashmatch serve` as a real subprocess on a real (free) port."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

READY = re.compile(r"serving on port (\d+).*?(?:metrics on port (\d+))?(?:, REST on port (\d+))?\)")


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    port: int
    metrics_port: int | None
    data_dir: Path
    rest_port: int | None = None
    log: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def drain(self) -> None:
        """Keep reading stderr so the server never blocks on a full pipe."""
        assert self.proc.stderr is not None
        stream = self.proc.stderr
        self._reader = threading.Thread(target=lambda: self.log.extend(stream), daemon=True)
        self._reader.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode


def _shared_audit_key(args: tuple[str, ...]) -> list[str]:
    """Replicas of one database append to one audit chain: each is given its key, as a
    deployment mounts one secret into every replica (one key file per database here)."""
    if "--database-url" not in args or "--audit-key-file" in args:
        return []
    url = args[args.index("--database-url") + 1]
    folder = Path(tempfile.gettempdir()) / "hashmatch-test-audit-keys"
    folder.mkdir(mode=0o700, exist_ok=True)
    key = folder / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.key"
    with contextlib.suppress(FileExistsError):
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return ["--audit-key-file", str(key)]


def start(
    data_dir: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> ServerProcess:
    cmd = [
        sys.executable,
        "-m",
        "hashmatch",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--backend",
        "cpu",
        *args,
        *_shared_audit_key(args),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        m = READY.search(line)
        if m:
            metrics = int(m.group(2)) if m.group(2) else None
            rest = int(m.group(3)) if m.group(3) else None
            server = ServerProcess(proc, int(m.group(1)), metrics, data_dir, rest, seen)
            server.drain()
            return server
    proc.kill()
    proc.wait()
    proc.stderr.close()
    raise RuntimeError("server did not start:\n" + "".join(seen))
