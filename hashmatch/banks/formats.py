"""Import and export formats of banks.

- csv / tsv: `value[,label,external_id]`, one entry a line; an optional header line. A bare
  64-digit value is PDQ (or the importer's default type), 32 digits MD5; `md5:`, `pdq:`,
  `sha256:` prefixes say so explicitly.
- jsonl: one object a line: {"signal_type", "value", "label", "external_id", "source"}.
- te: what python-threatexchange's `hash` and `dataset -P` print (`pdq 9e1d...`, with a
  rotation, a collab and a category where it prints them; its `--csv` too): te_format.py.
- ncmec: NCMEC hash-sharing v2 XML (`<queryResult><images><image>` with `<id>`,
  `<classification>`, `<fingerprints>`; `<deletedImage>`/`<deletedVideo>` tombstones by id).

Readers never stop at a bad row: they yield a RowError for it and go on. Every reader
works on bytes with a cap on line length, so a huge line or a wrong encoding costs one
row, not the import.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, TextIO
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from hashmatch.banks import te_format
from hashmatch.banks.model import (
    Entry,
    ExportReport,
    NewEntry,
    RowError,
    RowErrorCode,
    SignalType,
)
from hashmatch.errors import BadParameter

MAX_LINE = 64 * 1024


class Format(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    TE = "te"
    NCMEC = "ncmec"


@dataclass(frozen=True)
class Record:
    row: int
    entry: NewEntry


@dataclass(frozen=True)
class Removal:
    """A tombstone in the input: remove the bank's entries with this external id."""

    row: int
    external_id: str


Item = Record | Removal | RowError

_NCMEC_SIGNALS = {"pdq": SignalType.PDQ, "md5": SignalType.MD5, "sha256": SignalType.SHA256}
_HEADER_WORDS = {"value", "hash", "signal", "pdq", "md5", "sha256", "signal_type"}


def lines(f: BinaryIO, start: int = 0) -> Iterator[tuple[int, str | RowError]]:
    """(1-based line number, decoded line without newline, or the row's error); `start`:
    the lines before f (a block of a larger input)."""
    row = start
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        row += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while (more := f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                pass
            yield row, RowError(row, RowErrorCode.LINE_TOO_LONG, f"line over {MAX_LINE} bytes")
            continue
        if row == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield row, RowError(row, RowErrorCode.BAD_ENCODING, "not UTF-8")
            continue
        yield row, text.rstrip("\r\n")


def _value(row: int, text: str, default: SignalType) -> NewEntry | RowError:
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    try:
        if sep:
            try:
                st = SignalType(prefix.strip().lower())
            except ValueError:
                return RowError(row, RowErrorCode.UNSUPPORTED_SIGNAL, f"signal type {prefix!r}")
            return NewEntry(st, st.parse_hex(rest))
        st = SignalType.MD5 if len(text) == 32 else default
        return NewEntry(st, st.parse_hex(text))
    except BadParameter as exc:
        return RowError(row, RowErrorCode.BAD_VALUE, exc.message)


def _opt(fields: list[str], i: int) -> str | None:
    return fields[i].strip() or None if len(fields) > i else None


def read_delimited(f: BinaryIO, delimiter: str, default: SignalType) -> Iterator[Item]:
    return delimited_lines(lines(f), delimiter, default)


def is_header(fields: list[str]) -> bool:
    """A first line naming its columns (skipped), not a value."""
    return bool(fields) and fields[0].strip().lower() in _HEADER_WORDS


def delimited_lines(
    lines: Iterator[tuple[int, str | RowError]], delimiter: str, default: SignalType
) -> Iterator[Item]:
    """The items of numbered lines (see _lines) of a csv / tsv input."""
    te_csv = False  # python-threatexchange's `dataset -P --csv`, told by its header
    for row, line in lines:
        if isinstance(line, RowError):
            yield line
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], delimiter=delimiter))
        except csv.Error as exc:
            yield RowError(row, RowErrorCode.BAD_RECORD, f"unparsable row ({exc})")
            continue
        if row == 1 and te_format.is_te_csv_header(fields):
            te_csv = True
            continue
        if row == 1 and is_header(fields):
            continue
        if te_csv:
            yield _te_item(row, te_format.parse_csv_row(fields))
            continue
        got = _value(row, fields[0] if fields else "", default)
        if isinstance(got, RowError):
            yield got
            continue
        yield Record(row, NewEntry(got.signal_type, got.value, _opt(fields, 1), _opt(fields, 2)))


def read_jsonl(f: BinaryIO, default: SignalType) -> Iterator[Item]:
    for row, line in lines(f):
        if isinstance(line, RowError):
            yield line
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            yield RowError(row, RowErrorCode.BAD_RECORD, "not a JSON object")
            continue
        if not isinstance(obj, dict):
            yield RowError(row, RowErrorCode.BAD_RECORD, "not a JSON object")
            continue
        value = obj.get("value", obj.get("hash"))
        st_name = obj.get("signal_type", obj.get("type"))
        strings = [value, st_name, obj.get("label"), obj.get("external_id"), obj.get("source")]
        if not isinstance(value, str) or any(
            s is not None and not isinstance(s, str) for s in strings
        ):
            yield RowError(row, RowErrorCode.BAD_RECORD, "value and the other fields: strings")
            continue
        got = _value(row, f"{st_name}:{value}" if st_name else value, default)
        if isinstance(got, RowError):
            yield got
            continue
        yield Record(
            row,
            NewEntry(
                got.signal_type,
                got.value,
                obj.get("label"),
                obj.get("external_id"),
                obj.get("source"),
            ),
        )


def read_te(f: BinaryIO, default: SignalType = SignalType.PDQ) -> Iterator[Item]:
    numbered = lines(f)
    for row, line in numbered:
        if isinstance(line, RowError):
            yield line
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if row == 1 and te_format.is_te_csv_header(line.split(",")):
            yield from delimited_lines(itertools.chain([(row, line)], numbered), ",", default)
            return
        yield _te_item(row, te_format.parse_line(line, default))


def _te_item(row: int, parsed: te_format.TeRow | str) -> Item:
    if isinstance(parsed, str):
        return RowError(row, RowErrorCode.BAD_RECORD, parsed)
    got = te_format.to_entry(row, parsed)
    return got if isinstance(got, RowError) else Record(row, got)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_ncmec(f: BinaryIO) -> Iterator[Item]:
    """Streams <image>/<video> records (record number = position in the file, 1-based)."""
    row = 0
    try:
        for _, elem in ElementTree.iterparse(f, events=("end",)):
            tag = _local(elem.tag)
            if tag not in ("image", "video", "deletedImage", "deletedVideo"):
                continue
            row += 1
            fields = {_local(c.tag): c for c in elem}
            ext = (fields["id"].text or "").strip() if "id" in fields else ""
            if not ext:
                yield RowError(row, RowErrorCode.BAD_RECORD, f"<{tag}> without an <id>")
            elif tag.startswith("deleted"):
                yield Removal(row, ext)
            else:
                yield from _ncmec_record(row, ext, fields)
            elem.clear()
    except ElementTree.ParseError as exc:
        yield RowError(row + 1, RowErrorCode.BAD_RECORD, f"XML ends here: {exc}")


def _ncmec_record(row: int, ext: str, fields: dict[str, ElementTree.Element]) -> Iterator[Item]:
    label_el = fields.get("classification")
    label = (label_el.text or "").strip() or None if label_el is not None else None
    member = fields.get("member")
    source = f"ncmec:{member.get('id')}" if member is not None and member.get("id") else "ncmec"
    fps = fields.get("fingerprints")
    found = 0
    for fp in fps if fps is not None else ():
        st = _NCMEC_SIGNALS.get(_local(fp.tag).lower())
        if st is None:
            continue  # sha1, pdna, video fingerprints: not signals hashmatch matches
        found += 1
        try:
            yield Record(row, NewEntry(st, st.parse_hex(fp.text or ""), label, ext, source))
        except BadParameter as exc:
            yield RowError(row, RowErrorCode.BAD_VALUE, f"{ext}: {exc.message}")
    if not found:
        yield RowError(
            row, RowErrorCode.UNSUPPORTED_SIGNAL, f"{ext}: no md5, sha256 or pdq fingerprint"
        )


def read(f: BinaryIO, fmt: Format, default: SignalType = SignalType.PDQ) -> Iterator[Item]:
    if fmt is Format.CSV:
        return read_delimited(f, ",", default)
    if fmt is Format.TSV:
        return read_delimited(f, "\t", default)
    if fmt is Format.JSONL:
        return read_jsonl(f, default)
    if fmt is Format.TE:
        return read_te(f, default)
    return read_ncmec(f)


# -- export ----------------------------------------------------------------------------
def _prefixed(e: Entry) -> str:
    # PDQ and MD5 are told apart by length; SHA-256 needs its prefix.
    return f"sha256:{e.value.hex()}" if e.signal_type is SignalType.SHA256 else e.value.hex()


def write(
    out: TextIO,
    fmt: Format,
    entries: Iterable[Entry],
    checksums: te_format.Checksums = te_format.Checksums.DROP,
) -> ExportReport:
    """Writes entries in fmt: what was written, and what the format could not carry (te
    only: see te_format.write_te)."""
    if fmt is Format.NCMEC:
        return ExportReport(_write_ncmec(out, entries))
    if fmt is Format.TE:
        return te_format.write_te(out, entries, checksums)
    n = 0
    writer = csv.writer(out, delimiter="\t" if fmt is Format.TSV else ",", lineterminator="\n")
    for e in entries:
        if fmt in (Format.CSV, Format.TSV):
            writer.writerow([_prefixed(e), e.label or "", e.external_id or ""])
        else:
            obj = {k: v for k, v in e.to_json().items() if k not in ("id", "added_at")}
            out.write(json.dumps(obj) + "\n")
        n += 1
    return ExportReport(n)


def _write_ncmec(out: TextIO, entries: Iterable[Entry]) -> int:
    """One <image> per external id (entries without one: one image each)."""
    images: dict[str, list[Entry]] = {}
    for e in entries:
        images.setdefault(e.external_id or f"hashmatch-{e.id}", []).append(e)
    buf = io.StringIO()
    buf.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    buf.write('<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">\n')
    buf.write(f'  <images count="{len(images)}">\n')
    n = 0
    for ext, group in images.items():
        buf.write("    <image>\n")
        member = next((e.source for e in group if e.source and e.source.startswith("ncmec:")), None)
        if member:
            buf.write(f"      <member id={quoteattr(member[6:])}/>\n")
        buf.write(f"      <id>{escape(ext)}</id>\n")
        label = next((e.label for e in group if e.label), None)
        if label:
            buf.write(f"      <classification>{escape(label)}</classification>\n")
        buf.write("      <fingerprints>\n")
        for e in group:
            tag = e.signal_type.value
            buf.write(f"        <{tag}>{e.value.hex()}</{tag}>\n")
            n += 1
        buf.write("      </fingerprints>\n    </image>\n")
        out.write(buf.getvalue())
        buf.seek(0)
        buf.truncate()
    out.write(buf.getvalue() + "  </images>\n</queryResult>\n")
    return n
