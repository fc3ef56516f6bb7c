"""csv / tsv lists read in blocks by pyarrow and decoded by NumPy: an EntryBatch per block
of plain `value[,label[,external_id]]` rows, no Python object per row.

A block the fast path cannot take exactly as formats.read_delimited would (a bad row,
quotes, a prefix or an MD5 value, blank or comment lines, wrong encoding, a long line) is
read by formats.read_delimited's own code, numbered from its first line: its row errors
keep their rows and codes, and every other row reads the same either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from hashmatch.banks import formats, te_format
from hashmatch.banks.formats import MAX_LINE, Item, delimited_lines, is_header, lines
from hashmatch.banks.model import MAX_TEXT, EntryBatch, RowError, RowErrorCode, SignalType

BLOCK = 8 << 20  # bytes of input parsed at once (about 110,000 PDQ rows)
_BOM = b"\xef\xbb\xbf"

# Hex digit -> nibble; 255: not a hex digit.
_NIBBLE = np.full(256, 255, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


def read_delimited(f: BinaryIO, delimiter: str, default: SignalType) -> Iterator[Item | EntryBatch]:
    """formats.read_delimited's items, plain rows batched."""
    head = f.readline(MAX_LINE + 1)
    source = io.BufferedReader(_Joined(head, f))
    fields = _first_fields(head.removeprefix(_BOM), delimiter)
    if te_format.is_te_csv_header(fields):  # the TE layout: row by row
        return formats.read_delimited(source, delimiter, default)
    return _batches(source, delimiter, default, int(is_header(fields)))


def _batches(
    f: BinaryIO, delimiter: str, default: SignalType, header: int
) -> Iterator[Item | EntryBatch]:
    row = 0  # lines before the block
    for block in _blocks(f):
        if block is None:  # one line over MAX_LINE, skipped
            row += 1
            yield RowError(row, RowErrorCode.LINE_TOO_LONG, f"line over {MAX_LINE} bytes")
            continue
        skip = header if row == 0 else 0
        batch = _fast(
            block.removeprefix(_BOM) if row == 0 else block, row, skip, delimiter, default
        )
        if batch is None:
            yield from delimited_lines(lines(io.BytesIO(block), row), delimiter, default)
        elif len(batch):
            yield batch
        row += block.count(b"\n") + (not block.endswith(b"\n"))


def _blocks(f: BinaryIO) -> Iterator[bytes | None]:
    """The input in blocks of whole lines (the last maybe without its newline); None for
    a line over MAX_LINE, which is skipped."""
    carry = b""
    while data := f.read(BLOCK):
        buf = carry + data
        cut = buf.rfind(b"\n") + 1
        carry = buf[cut:]
        if cut:
            yield buf[:cut]
        if len(carry) > MAX_LINE:
            yield None
            while (more := f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                pass
            carry = b""
    if carry:
        yield carry


def _first_fields(block: bytes, delimiter: str) -> list[str]:
    line = block.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


class _Joined(io.RawIOBase):
    """A block already read, then the rest of the file."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self._head = memoryview(head)
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head.nbytes:
            n = min(len(b), self._head.nbytes)
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._tail.read(len(b))
        b[: len(data)] = data
        return len(data)


def _fast(
    block: bytes, row: int, skip: int, delimiter: str, default: SignalType
) -> EntryBatch | None:
    """The block's rows after the first `skip` lines (a header) as one batch, or None
    where any row needs the row-by-row reader. `row`: the lines before the block."""
    if default.nbytes != 32 or b'"' in block or block.count(b"\r") != block.count(b"\r\n"):
        return None
    body = block.split(b"\n", skip)[-1] if skip else block
    if not body:
        return _empty(default)
    n_cols = len(_first_fields(body, delimiter))
    try:
        table = pa_csv.read_csv(
            io.BytesIO(body),
            read_options=pa_csv.ReadOptions(
                column_names=[f"c{i}" for i in range(n_cols)],
                block_size=BLOCK + 2 * MAX_LINE,
                use_threads=False,  # one core: the store's work runs beside it
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(n_cols)},
                include_columns=[f"c{i}" for i in range(min(n_cols, 3))],
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # a ragged row, or not UTF-8
        return None
    n = table.num_rows
    if n != body.count(b"\n") + (not body.endswith(b"\n")):
        return None  # blank lines: the rows' numbers would not be theirs
    values = _hex(table.column(0), default.nbytes)
    labels = _text(table, 1, n)
    external_ids = _text(table, 2, n)
    if values is None or labels is None or external_ids is None:
        return None
    return EntryBatch(
        default, values, labels, external_ids, np.arange(row + skip + 1, row + skip + 1 + n)
    )


def _empty(st: SignalType) -> EntryBatch:
    none = pa.nulls(0, pa.string())
    return EntryBatch(st, np.empty((0, st.nbytes), np.uint8), none, none, np.empty(0, np.int64))


def _hex(column: Any, nbytes: int) -> np.ndarray | None:
    """uint8[n, nbytes] of a column of hex strings, or None unless every one is exactly
    2 * nbytes hex digits (surrounding whitespace aside)."""
    arr = pc.utf8_trim_whitespace(column).combine_chunks()
    width = 2 * nbytes
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4)
    if n and not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(arr.buffers()[2], np.uint8, n * width, int(offsets[0]))
    nibbles = _NIBBLE[data].reshape(n, width)
    if (nibbles == 255).any():
        return None
    return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]


def _text(table: Any, i: int, n: int) -> Any:
    """Column i trimmed, empty as null (as the row reader's `_opt`); None where a value
    is longer than an entry holds (the row reader says why)."""
    if i >= table.num_columns:
        return pa.nulls(n, pa.string())
    arr = pc.utf8_trim_whitespace(table.column(i)).combine_chunks()
    lengths = pc.utf8_length(arr)
    if n and pc.max(lengths).as_py() > MAX_TEXT:
        return None
    return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), arr)
