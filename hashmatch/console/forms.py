"""Form bodies read into memory, bounded: uploads (an image for the debugger, a hash list
to import) never touch the disk, and no body is larger than the console allows."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from hashmatch.errors import BadParameter
from hashmatch.rest.bodies import bounded_body


class _InMemoryParser(MultiPartParser):
    # Starlette spools a file part to disk past 1 MiB; the whole body is bounded before
    # parsing, so keeping every part in memory is bounded too.
    spool_max_size = 1 << 62


async def read_form(request: Request, max_bytes: int) -> FormData:
    body = await bounded_body(request, max_bytes, "form")

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            parser = _InMemoryParser(request.headers, stream(), max_files=1, max_fields=50,
                                     max_part_size=1 << 20)  # fmt: skip
            return await parser.parse()
        if ctype.startswith("application/x-www-form-urlencoded"):
            return await FormParser(request.headers, stream()).parse()
    except MultiPartException as exc:
        raise BadParameter(f"malformed form: {exc.message}") from None
    raise BadParameter("expected a form (urlencoded or multipart)")


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


async def upload(form: FormData, name: str) -> bytes:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        raise BadParameter(f"choose a file ({name})")
    return await value.read()
