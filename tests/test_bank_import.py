"""Import/export: every format, bad rows, idempotency, and all-or-nothing imports (on
SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks import fast_csv, formats, importer
from hashmatch.banks.formats import Format
from hashmatch.banks.importer import export_bank, import_file, iter_entries
from hashmatch.banks.model import BankSettings, NewEntry, RowErrorCode, SignalType, WriteReport
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.banks.store import BankStore
from tests import postgres
from tests.conftest import BankOpener

RNG = np.random.default_rng(7)
PDQS = [RNG.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(6)]
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

NCMEC_XML = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="3" maxTimestamp="2017-10-24T15:10:00Z">
    <image>
      <member id="42">Example Member</member>
      <timestamp>2017-10-24T15:00:00Z</timestamp>
      <id>image1</id>
      <classification>A1</classification>
      <fingerprints>
        <md5>{MD5}</md5>
        <sha1>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</sha1>
        <pdq>{PDQS[0]}</pdq>
      </fingerprints>
    </image>
    <image>
      <member id="42">Example Member</member>
      <id>image2</id>
      <classification>B2</classification>
      <fingerprints><pdq>{PDQS[1]}</pdq></fingerprints>
    </image>
    <image>
      <id>image3</id>
      <fingerprints><pdna>abc</pdna></fingerprints>
    </image>
    <deletedImage>
      <member id="43">Example Member2</member>
      <id>old1</id>
      <timestamp>2017-10-24T15:10:00Z</timestamp>
    </deletedImage>
  </images>
  <videos count="1">
    <video>
      <id>video1</id>
      <classification>A2</classification>
      <fingerprints><md5>b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1</md5></fingerprints>
    </video>
  </videos>
</queryResult>
"""


@pytest.fixture
def store(open_bank_store: BankOpener) -> Iterator[BankStore]:
    s = open_bank_store()
    s.create_bank("b", BankSettings())
    yield s
    s.close()


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _values(store: BankStore) -> dict[str, str | None]:
    return {e.value.hex(): e.label for e in iter_entries(store, "b")}


def test_csv_with_header_labels_and_prefixes(store: BankStore, tmp_path: Path) -> None:
    text = f"value,label,external_id\n{PDQS[0]},A1,e1\n{MD5},A2\nsha256:{SHA},,e3\n{PDQS[1]}\n"
    r = import_file(store, "b", _write(tmp_path, "a.csv", text), Format.CSV)
    assert (r.added, r.errors) == (4, [])
    entries = {e.value.hex(): e for e in iter_entries(store, "b")}
    assert entries[PDQS[0]].label == "A1" and entries[PDQS[0]].external_id == "e1"
    assert entries[MD5].signal_type is SignalType.MD5
    assert entries[SHA].signal_type is SignalType.SHA256 and entries[SHA].label is None


def test_tsv_and_default_sha256(store: BankStore, tmp_path: Path) -> None:
    r = import_file(
        store, "b", _write(tmp_path, "a.tsv", f"{SHA}\tA1\n"), Format.TSV, SignalType.SHA256
    )
    assert r.added == 1
    assert store.count_entries("b")[SignalType.SHA256] == 1


def test_jsonl(store: BankStore, tmp_path: Path) -> None:
    text = (
        f'{{"signal_type": "pdq", "value": "{PDQS[0]}", "label": "A1", "source": "s"}}\n'
        f'{{"value": "{MD5}"}}\n'
        '{"value": 5}\n'
        "[1, 2]\n"
        "{broken\n"
    )
    r = import_file(store, "b", _write(tmp_path, "a.jsonl", text), Format.JSONL)
    assert r.added == 2
    assert [(e.row, e.code) for e in r.errors] == [
        (3, "BAD_RECORD"),
        (4, "BAD_RECORD"),
        (5, "BAD_RECORD"),
    ]


def test_threatexchange_lines(store: BankStore, tmp_path: Path) -> None:
    text = f"pdq {PDQS[0]}\nmd5 {MD5} extra metadata\nvideo_md5 {MD5}\ntmk abc\npdq\n"
    r = import_file(store, "b", _write(tmp_path, "a.te", text), Format.TE)
    assert (r.added, r.duplicates) == (2, 1)  # the two MD5s are equal values: one counts
    codes = [(e.row, e.code) for e in r.errors]
    assert codes == [(4, "UNSUPPORTED_SIGNAL"), (5, "BAD_RECORD")]


def test_ncmec_xml_entries_and_tombstones(store: BankStore, tmp_path: Path) -> None:
    store.write_entries("b", [NewEntry(SignalType.PDQ, bytes.fromhex(PDQS[5]), "A1", "old1")])
    r = import_file(store, "b", _write(tmp_path, "n.xml", NCMEC_XML), Format.NCMEC)
    assert (r.added, r.removed) == (4, 1)
    assert [(e.row, e.code) for e in r.errors] == [(3, RowErrorCode.UNSUPPORTED_SIGNAL)]
    entries = {e.value.hex(): e for e in iter_entries(store, "b")}
    assert PDQS[5] not in entries
    assert entries[PDQS[0]].external_id == "image1" and entries[PDQS[0]].label == "A1"
    assert entries[MD5].source == "ncmec:42"
    # the NCMEC export reads back to the same bank
    out = io.StringIO()
    export_bank(store, "b", Format.NCMEC, out)
    again = import_file(store, "b", _write(tmp_path, "e.xml", out.getvalue()), Format.NCMEC)
    assert (again.added, again.unchanged, again.errors) == (0, 4, [])


def test_ncmec_truncated_xml_keeps_earlier_records(store: BankStore, tmp_path: Path) -> None:
    cut = NCMEC_XML[: NCMEC_XML.index("<id>image3")]
    r = import_file(store, "b", _write(tmp_path, "t.xml", cut), Format.NCMEC)
    assert r.added == 3
    assert r.errors and r.errors[-1].code == RowErrorCode.BAD_RECORD


def test_bad_rows_are_reported_and_good_rows_kept(store: BankStore, tmp_path: Path) -> None:
    store.write_entries("b", [NewEntry(SignalType.PDQ, bytes.fromhex(PDQS[4]), "keep")])
    lines = [
        PDQS[0].encode(),  # 1 good
        PDQS[0][:-1].encode(),  # 2 wrong length
        ("zz" * 32).encode(),  # 3 not hex
        PDQS[0].encode() + b",dup",  # 4 duplicate of row 1
        b"a" * 200_000,  # 5 a huge line
        PDQS[1].encode() + b",\xff\xfe",  # 6 not UTF-8
        PDQS[2].encode() + b",A2",  # 7 good
        b"",  # blank: skipped
        b"sha1:" + b"0" * 40,  # 9 unsupported type
    ]
    r = import_file(store, "b", _write(tmp_path, "bad.csv", b"\n".join(lines) + b"\n"), Format.CSV)
    assert (r.added, r.duplicates) == (2, 1)  # row 4 repeats row 1: a duplicate, no error
    got = [(e.row, e.code) for e in r.errors]
    assert got == [
        (2, "BAD_VALUE"),
        (3, "BAD_VALUE"),
        (5, "LINE_TOO_LONG"),
        (6, "BAD_ENCODING"),
        (9, "UNSUPPORTED_SIGNAL"),
    ]
    assert _values(store) == {PDQS[4]: "keep", PDQS[0]: None, PDQS[2]: "A2"}


def test_signal_type_not_enabled(store: BankStore, tmp_path: Path) -> None:
    store.create_bank("pdqonly", BankSettings(signal_types=frozenset({SignalType.PDQ})))
    r = import_file(store, "pdqonly", _write(tmp_path, "m.csv", f"{MD5}\n{PDQS[0]}\n"), Format.CSV)
    assert r.added == 1 and [e.code for e in r.errors] == ["SIGNAL_NOT_ENABLED"]


@pytest.mark.parametrize("fmt", [Format.CSV, Format.TSV, Format.JSONL, Format.NCMEC])
def test_import_twice_and_export_round_trip(store: BankStore, tmp_path: Path, fmt: Format) -> None:
    rows = (
        "".join(f"{p},L{i},x{i}\n" for i, p in enumerate(PDQS)) + f"{MD5},A1,m\nsha256:{SHA},,s\n"
    )
    src = _write(tmp_path, "src.csv", rows)
    first = import_file(store, "b", src, Format.CSV)
    second = import_file(store, "b", src, Format.CSV)
    assert (first.added, second.added, second.unchanged) == (8, 0, 8)
    before = {(e.signal_type, e.value, e.label, e.external_id) for e in iter_entries(store, "b")}
    out = io.StringIO()
    assert export_bank(store, "b", fmt, out).written == 8
    store.create_bank("copy", BankSettings())
    r = import_file(store, "copy", _write(tmp_path, f"out.{fmt.value}", out.getvalue()), fmt)
    assert r.errors == [] and r.added == 8
    after = {(e.signal_type, e.value, e.label, e.external_id) for e in iter_entries(store, "copy")}
    assert after == before


def test_killed_import_leaves_bank_as_it_was_or_complete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SqliteBankStore(data / "banks.sqlite3")
    store.create_bank("big", BankSettings())
    store.write_entries("big", [NewEntry(SignalType.MD5, bytes(16), "before")])
    store.close()
    n = 300_000
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    big = tmp_path / "big.csv"
    big.write_text("".join(f"{c.tobytes().hex()},A1,e{i}\n" for i, c in enumerate(codes)))
    wal = data / "banks.sqlite3-wal"
    cmd = [
        sys.executable,
        "-m",
        "hashmatch",
        "bank",
        "import",
        "big",
        str(big),
        "--data-dir",
        str(data),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_running = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 1 << 20:  # the write transaction is under way
            os.kill(proc.pid, signal.SIGKILL)
            killed_running = True
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_running, "the import finished before it could be killed; make it bigger"
    store = SqliteBankStore(data / "banks.sqlite3")
    counts = store.count_entries("big")
    assert counts[SignalType.MD5] == 1
    assert counts[SignalType.PDQ] in (0, n)  # never half
    seq = store.current_sequence()
    adds = [c for c in store.changes_since(0, limit=10 * n) if c.kind.value == "add"]
    assert len(adds) == 1 + counts[SignalType.PDQ]  # the change log agrees with the bank
    assert seq >= len(adds)
    # and the same import, run to its end, completes the bank
    store.close()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    store = SqliteBankStore(data / "banks.sqlite3")
    assert store.count_entries("big")[SignalType.PDQ] == n
    store.close()


def test_killed_import_into_postgres_leaves_bank_as_it_was_or_complete(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    """SIGKILL of `hashmatch bank import` while its COPY streams: the transaction dies with
    the connection, so the bank is as it was; the rerun completes it, nothing duplicated."""
    import psycopg

    from hashmatch.banks.postgres_store import PostgresBankStore

    url = pg_cluster.new_database()
    store = PostgresBankStore(url)
    store.create_bank("big", BankSettings())
    store.write_entries("big", [NewEntry(SignalType.MD5, bytes(16), "before")])
    store.close()
    n = 300_000
    codes = np.random.default_rng(12).integers(0, 256, size=(n, 32), dtype=np.uint8)
    big = tmp_path / "big.csv"
    big.write_text("".join(f"{c.tobytes().hex()},A1,e{i}\n" for i, c in enumerate(codes)))
    cmd = [sys.executable, "-m", "hashmatch", "bank", "import", "big", str(big),
           "--database-url", url, "--data-dir", str(tmp_path / "d")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_running = False
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as watch:
        while time.monotonic() < deadline and proc.poll() is None:
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY staging (%'"
            ).fetchone()
            if row and row[0]:
                time.sleep(0.3)  # well into the stream
                os.kill(proc.pid, signal.SIGKILL)
                killed_running = True
                break
            time.sleep(0.01)
    proc.wait()
    assert killed_running, "the import finished before it could be killed; make it bigger"
    store = PostgresBankStore(url)
    _within_s(lambda: store.count_entries("big")[SignalType.PDQ] == 0, 10)
    assert store.count_entries("big")[SignalType.MD5] == 1
    adds = [c for c in store.changes_since(0, limit=10 * n) if c.kind.value == "add"]
    assert len(adds) == 1  # the change log agrees with the bank
    store.close()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    store = PostgresBankStore(url)
    assert store.count_entries("big")[SignalType.PDQ] == n
    assert len([c for c in store.changes_since(0, limit=10 * n) if c.kind.value == "add"]) == n + 1
    store.close()


def _within_s(predicate: Callable[[], bool], seconds: float) -> None:
    """The server notices a vanished client's connection and rolls back: soon, not at once."""
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "not rolled back in time"
        time.sleep(0.05)


def test_csv_read_in_blocks_equals_row_by_row(
    store: BankStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_csv, "BLOCK", 1024)  # about 14 rows a block
    values = [RNG.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(120)]
    lines = ["value,label,external_id"] + [f"{v},L{i % 3},x{i}" for i, v in enumerate(values)]
    lines[20] = values[0][:-1]  # a bad value: its block is read row by row
    lines[30] = f"{values[4]},again"  # a duplicate of row 6, in a fast block
    lines[45] = f"{MD5},m5"  # an MD5 value: row by row too
    lines[60] = "a" * 200_000  # a line too long
    lines[80] = f" {values[80].upper()} ,  spaced  ,"  # trimmed as the row reader trims
    path = _write(tmp_path, "list.csv", "\r\n".join(lines) + "\r\n")
    with open(path, "rb") as f:
        kinds = {type(item).__name__ for item in fast_csv.read_delimited(f, ",", SignalType.PDQ)}
    assert kinds == {"EntryBatch", "Record", "RowError"}
    fast = import_file(store, "b", path, Format.CSV)
    store.create_bank("c", BankSettings())
    slow = WriteReport()
    with open(path, "rb") as f:
        items = formats.read(f, Format.CSV, SignalType.PDQ)
        report = store.import_entries("c", importer._events(items, store.get_bank("c"), slow))
    assert (fast.added, fast.duplicates) == (report.added, report.duplicates) == (116, 2)
    assert [(e.row, e.code) for e in fast.errors] == [(e.row, e.code) for e in slow.errors]
    assert [(e.row, e.code) for e in fast.errors] == [(21, "BAD_VALUE"), (61, "LINE_TOO_LONG")]

    def entries(bank: str) -> dict[bytes, tuple[str | None, str | None]]:
        return {e.value: (e.label, e.external_id) for e in iter_entries(store, bank)}

    assert entries("b") == entries("c")
    assert entries("b")[bytes.fromhex(values[80])] == ("spaced", None)
    assert entries("b")[bytes.fromhex(values[4])] == ("L1", "x4")  # the first row counts


def test_rows_of_a_signal_the_bank_lacks_in_a_fast_block(store: BankStore, tmp_path: Path) -> None:
    store.create_bank("md5only", BankSettings(signal_types=frozenset({SignalType.MD5})))
    path = _write(tmp_path, "p.csv", "".join(f"{v},A\n" for v in PDQS[:3]))
    r = import_file(store, "md5only", path, Format.CSV)
    assert r.added == 0
    assert [(e.row, e.code) for e in r.errors] == [(i, "SIGNAL_NOT_ENABLED") for i in (1, 2, 3)]
