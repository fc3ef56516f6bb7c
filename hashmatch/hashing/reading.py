"""An item to hash: bytes in memory, or a path to read them from (bounded)."""

from __future__ import annotations

import os

from hashmatch.errors import TooLarge, Unreadable

Item = bytes | bytearray | memoryview | str | os.PathLike[str]


def read_item(item: Item, max_bytes: int) -> bytes:
    """The bytes of an item: given directly, or read from a path (bounded)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    try:
        # Plain open(): pathlib's parsing costs tens of microseconds under the GIL per
        # item, which is what caps thread scaling on small images.
        with open(os.fspath(item), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise TooLarge(f"{size} bytes, over the limit of {max_bytes}")
            # Read one byte past the limit: files can grow, pipes have no size.
            data = fh.read(max_bytes + 1)
    except IsADirectoryError:
        raise Unreadable("is a directory") from None
    except OSError as exc:
        raise Unreadable(exc.strerror or type(exc).__name__) from None
    if len(data) > max_bytes:
        raise TooLarge(f"over the limit of {max_bytes} bytes")
    return data
