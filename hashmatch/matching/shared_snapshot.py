"""The index snapshot shared by replicas at an fsspec URL (`[server] shared_snapshot`, e.g.
s3://bucket/hashmatch/index.snapshot or file:///mnt/shared/index.snapshot): a new replica
copies it into its data dir and starts from it plus the change log's tail (seconds at 10M
entries, against minutes from the database alone); every replica publishes its own after
writing it. Any replica's snapshot will do: each is checked against the database (same
store, not ahead of it) before use, and the tail covers whatever it lacks."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

import fsspec

_log = logging.getLogger(__name__)


def fetch(url: str, local: Path) -> bool:
    """The shared snapshot copied to `local` (atomically); False when there is none or it
    cannot be read (the replica then builds from the database)."""
    fd, tmp = tempfile.mkstemp(prefix=local.name + ".", suffix=".fetch", dir=local.parent)
    try:
        with os.fdopen(fd, "wb") as out, fsspec.open(url, "rb") as src:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        os.chmod(tmp, 0o600)
        os.replace(tmp, local)
        return True
    except FileNotFoundError:
        return False
    except Exception as exc:  # any store's error: never a reason not to start
        _log.warning("shared index snapshot not read (%s): building from the database",
                     type(exc).__name__)  # fmt: skip
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def publish(local: Path, url: str) -> None:
    """This replica's snapshot to the shared URL: uploaded beside it, then moved over it,
    so a replica fetching meanwhile reads the old one or the new one, whole."""
    fs, path = fsspec.core.url_to_fs(url)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        fs.put_file(str(local), tmp)
        fs.mv(tmp, path)
    except Exception as exc:  # a store away must not stop matching
        _log.warning("shared index snapshot not published: %s", type(exc).__name__)
        with contextlib.suppress(Exception):
            fs.rm(tmp)
