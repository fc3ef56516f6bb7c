"""The images a load test sends: files, folders (walked), or text files of paths."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from hashmatch.errors import BadParameter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
LIST_SUFFIXES = {".txt", ".lst"}


def _paths(sources: Sequence[str]) -> Iterator[Path]:
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.suffix.lower() in LIST_SUFFIXES:
            lines = path.read_text().splitlines()
            yield from (Path(line.strip()) for line in lines if line.strip())
        else:
            yield path


def load_images(sources: Sequence[str], max_images: int, max_bytes: int) -> list[bytes]:
    """Up to max_images files, max_bytes in all, read into memory once (a load test must
    not measure the client's disk)."""
    out: list[bytes] = []
    total = 0
    for path in _paths(sources):
        if len(out) >= max_images:
            break
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadParameter(f"{path}: {exc.strerror}") from None
        if total + len(data) > max_bytes:
            break
        out.append(data)
        total += len(data)
    if not out:
        raise BadParameter("no images found in " + " ".join(sources))
    return out
