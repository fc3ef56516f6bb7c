"""A request body read into memory, bounded: what every HTTP face (REST, console) reads."""

from __future__ import annotations

from starlette.requests import Request

from hashmatch.errors import TooLarge


async def bounded_body(request: Request, max_bytes: int, what: str = "request") -> bytes:
    """The whole body, refused (TooLarge) as soon as it is known to be over max_bytes:
    from Content-Length before reading, else while streaming it."""
    length = int(request.headers.get("content-length") or 0)
    if length > max_bytes:
        raise TooLarge(f"a {what} of {length:,} bytes is over {max_bytes:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"a {what} over {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
