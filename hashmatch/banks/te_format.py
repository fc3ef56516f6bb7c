"""python-threatexchange's signal formats, both ways.

What it prints and hashmatch reads (`--format te`, and its CSV through `--format csv` too):
- `hash`: `<signal type> <value>`; with `--photo-preprocess rotations` each line starts
  with the rotation (`ROTATE90 pdq <value>`);
- `dataset -P`: `<signal type> <value> '<collab>' <CATEGORY>[ <tag>,<tag>]`, the type
  left out when one type was asked for (`-s pdq`), the collab when one collab was;
- `dataset -P --csv`: `signal_type,signal_str,collab,category,tags` with that header.

Signal types: `pdq`, and `video_md5` / `video_sha256` (file checksums: hashmatch's MD5
and SHA-256 match any file's bytes). The collab becomes the entry's source, the category
(and tags) its label; a NEGATIVE_CLASS opinion (a known false positive, or test data) is
no match target: that row is refused, with its own code.

What it reads back (its local-file collaboration): `<signal type> <value>` and nothing else
on the line, so an export to it carries no labels, and has no type for a photo's checksum:
`write_te` says what it had to leave out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TextIO

from hashmatch.banks.model import (
    Entry,
    ExportReport,
    NewEntry,
    RowError,
    RowErrorCode,
    SignalType,
)
from hashmatch.errors import BadParameter

# python-threatexchange's names; `md5`/`sha256` are what hashmatch's own older exports wrote.
TE_READ_NAMES = {
    "pdq": SignalType.PDQ,
    "video_md5": SignalType.MD5,
    "video_sha256": SignalType.SHA256,
    "md5": SignalType.MD5,
    "sha256": SignalType.SHA256,
}
ROTATIONS = {"ORIGINAL", "ROTATE90", "ROTATE180", "ROTATE270", "FLIPX", "FLIPY",
             "FLIPPLUS1", "FLIPMINUS1"}  # fmt: skip
CATEGORIES = {"POSITIVE_CLASS", "INVESTIGATION_SEED", "DISPUTED", "NEGATIVE_CLASS"}
CSV_HEADER = ["signal_type", "signal_str", "collab", "category", "tags"]
_QUOTED = re.compile(r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


@dataclass(frozen=True)
class TeRow:
    """One signal as python-threatexchange printed it."""

    signal: str  # its signal type name, as printed
    value: str
    collab: str | None = None
    category: str | None = None
    tags: str | None = None


def is_te_csv_header(fields: list[str]) -> bool:
    return [f.strip().lower() for f in fields[:2]] == CSV_HEADER[:2]


def parse_line(line: str, default: SignalType) -> TeRow | str:
    """A `hash` or `dataset -P` line, or what is wrong with it. Words after the value that
    are not a collab and a category are ignored (notes some lists carry)."""
    head, _, rest = line.strip().partition(" ")
    if head.upper() in ROTATIONS and rest:
        head, _, rest = rest.strip().partition(" ")
    if re.fullmatch(r"[0-9a-fA-F]{32,}", head):  # `dataset -P -s pdq`: the type left out
        value, signal = head, default.value
    elif re.fullmatch(r"[a-z][a-z0-9_]*", head.lower()):
        value, _, rest = rest.strip().partition(" ")
        signal = head.lower()
    else:
        return f"expected '<signal type> <value>', got {head!r}"
    if not value:
        return "expected '<signal type> <value>'"
    collab = None
    if quoted := _QUOTED.match(rest):
        try:  # a Python string literal, as its repr() printed it; only literals are read
            collab = str(ast.literal_eval(quoted.group(1)))
        except (ValueError, SyntaxError):
            return f"unreadable collab name {quoted.group(1)[:80]!r}"
        rest = rest[quoted.end() :]
    category, _, tags = rest.strip().partition(" ")
    if category not in CATEGORIES:
        return TeRow(signal, value, collab)
    return TeRow(signal, value, collab, category, tags.strip() or None)


def parse_csv_row(fields: list[str]) -> TeRow | str:
    if len(fields) < 2:
        return "expected signal_type,signal_str,collab,category,tags"
    padded = [f.strip() for f in fields] + [""] * (len(CSV_HEADER) - len(fields))
    signal, value, collab, category, tags = padded[:5]
    if category and category not in CATEGORIES:
        return f"category {category!r} is not one of python-threatexchange's"
    return TeRow(signal.lower(), value, collab or None, category or None,
                 ",".join(tags.split()) or None)  # fmt: skip


def to_entry(row: int, te: TeRow) -> NewEntry | RowError:
    st = TE_READ_NAMES.get(te.signal)
    if st is None:
        return RowError(row, RowErrorCode.UNSUPPORTED_SIGNAL, f"signal type {te.signal!r}")
    if te.category == "NEGATIVE_CLASS":
        return RowError(
            row, RowErrorCode.NEGATIVE_CLASS, "a NEGATIVE_CLASS opinion is not a match target"
        )
    label = None
    if te.category:
        label = te.category if te.tags is None else f"{te.category} {te.tags}"
    try:
        return NewEntry(st, st.parse_hex(te.value), label, None, te.collab)
    except BadParameter as exc:
        return RowError(row, RowErrorCode.BAD_VALUE, exc.message)


class Checksums(StrEnum):
    """What an export to python-threatexchange does with MD5 and SHA-256 entries: it has
    no photo checksum type, so they are left out (and said), or written as video ones
    (for banks of video checksums)."""

    DROP = "drop"
    VIDEO = "video"


_TE_WRITE_NAMES = {
    Checksums.DROP: {SignalType.PDQ: "pdq"},
    Checksums.VIDEO: {
        SignalType.PDQ: "pdq",
        SignalType.MD5: "video_md5",
        SignalType.SHA256: "video_sha256",
    },
}


def write_te(out: TextIO, entries: Iterable[Entry], checksums: Checksums) -> ExportReport:
    names = _TE_WRITE_NAMES[checksums]
    report = ExportReport()
    for e in entries:
        name = names.get(e.signal_type)
        if name is None:
            report.dropped[e.signal_type.value] = report.dropped.get(e.signal_type.value, 0) + 1
            continue
        if e.label or e.source:
            report.labels_dropped += 1
        out.write(f"{name} {e.value.hex()}\n")
        report.written += 1
    return report
