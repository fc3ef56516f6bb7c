"""A batch of entries as PostgreSQL's COPY text format, built by pyarrow with no Python
object per row (the importer's hot path)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hashmatch.banks.model import EntryBatch


def copy_text(batch: EntryBatch, seq: int) -> Any:
    """A batch as COPY's text format (tab-separated, \\N for NULL), built by pyarrow with no
    Python object per row; its rows numbered from seq."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(batch)
    width = 3 + 2 * batch.signal_type.nbytes  # \\x and the digits: bytea's hex form, escaped
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    values = np.ascontiguousarray(batch.values)
    text = np.empty((n, width), np.uint8)
    text[:, :3] = np.frombuffer(b"\\\\x", np.uint8)
    text[:, 3::2], text[:, 4::2] = digits[values >> 4], digits[values & 15]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    hexes = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    columns = [
        pa.array(np.arange(seq, seq + n)).cast(pa.string()),
        pa.repeat(batch.signal_type.value, n),
        hexes,
        _escaped(pc, batch.labels),
        _escaped(pc, batch.external_ids),
        pa.nulls(n, pa.string())
        if batch.source is None
        else _escaped(pc, pa.repeat(batch.source, n)),
    ]
    rows = pc.binary_join_element_wise(
        *columns, "\t", null_handling="replace", null_replacement="\\N"
    )
    lines = pc.binary_join_element_wise(rows, pa.scalar(""), "\n")
    _, offsets_buf, data = lines.buffers()
    ends = np.frombuffer(offsets_buf, np.int32, n + 1, lines.offset * 4)
    return data[int(ends[0]) : int(ends[-1])]


def _escaped(pc: Any, column: Any) -> Any:
    """Text as COPY reads it: backslash, tab, newline and carriage return escaped."""
    for char, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        column = pc.replace_substring(column, char, escape)
    return column
