"""What a scan reads: a directory tree, a file listing paths/URIs, or an fsspec prefix.

Listings stream (never the whole tree in memory) and are deterministic (names sorted at
each level), so a resumed scan cuts the same shards as the first run.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hashmatch.errors import BadParameter, ErrorCode


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One input: where it is, and what listing it told (size, mtime), or why it can't be read."""

    path: str
    size: int = -1
    mtime: float = 0.0
    error: ErrorCode | None = None
    message: str = ""


def iter_source(source: str) -> Iterator[SourceItem]:
    if "://" in source:
        yield from _iter_fsspec(source)
        return
    path = Path(source)
    if path.is_dir():
        yield from _iter_tree(path, set())
    elif path.is_file():
        yield from _iter_listing(path)
    else:
        raise BadParameter(f"scan source {source!r}: not a directory, a file or a URI")


def _iter_tree(root: Path, seen: set[tuple[int, int]]) -> Iterator[SourceItem]:
    """Depth-first, names sorted; directory symlinks are not followed (no loops), file
    symlinks are (a broken one is an error row)."""
    try:
        st = root.stat()
        if (st.st_dev, st.st_ino) in seen:  # a bind mount looping back: once is enough
            return
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield SourceItem(str(root), error=ErrorCode.UNREADABLE, message=exc.strerror or str(exc))
        return
    for entry in entries:
        full = os.path.join(root, entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _iter_tree(Path(full), seen)
                continue
            if entry.is_symlink() and Path(full).is_dir():
                continue  # a symlinked directory: skipped, loops cannot happen
            st = os.stat(full)  # follows file symlinks; a broken one raises
        except OSError as exc:
            yield SourceItem(full, error=ErrorCode.UNREADABLE, message=exc.strerror or str(exc))
            continue
        if stat.S_ISREG(st.st_mode):
            yield SourceItem(full, st.st_size, st.st_mtime)
        else:
            yield SourceItem(full, error=ErrorCode.UNREADABLE, message="not a regular file")


def _iter_listing(listing: Path) -> Iterator[SourceItem]:
    with listing.open(encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            name = line.rstrip("\n")
            if not name.strip():
                continue
            if "://" in name:
                yield SourceItem(name)
                continue
            try:
                st = os.stat(name)
            except OSError as exc:
                yield SourceItem(name, error=ErrorCode.UNREADABLE, message=exc.strerror or str(exc))
                continue
            yield SourceItem(name, st.st_size, st.st_mtime)


def _iter_fsspec(prefix: str) -> Iterator[SourceItem]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(prefix)
    protocol = prefix.split("://", 1)[0]
    for name in sorted(fs.find(root)):
        info = fs.info(name)
        mtime = info.get("mtime") or info.get("LastModified") or 0.0
        if hasattr(mtime, "timestamp"):
            mtime = mtime.timestamp()
        uri = name if "://" in name else f"{protocol}://{name}"
        yield SourceItem(uri, int(info.get("size") or 0), float(mtime))


def read_uri(uri: str, max_bytes: int) -> bytes:
    """The bytes behind a URI (fsspec), bounded like local files."""
    import fsspec

    with fsspec.open(uri, "rb") as fh:
        data: bytes = fh.read(max_bytes + 1)
    return data
