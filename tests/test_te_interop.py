"""python-threatexchange's formats, both ways: what its `hash` and `dataset` commands print
imports into a bank, and what `bank export --format te` writes its local-file collaboration
reads back. Against the real package's CLI (CI installs it in a venv of its own: its faiss
build is not hashmatch's); the parsing rules are checked on their own as well."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks.formats import Format, read
from hashmatch.banks.model import RowError, RowErrorCode, SignalType
from hashmatch.cli import main
from hashmatch.commands.common import ExitCode, Streams
from tests.banks_helpers import random_codes
from tests.helpers import encode, synthetic_rgb

RNG = np.random.default_rng(77)


def te_cli() -> str:
    path = os.environ.get("HASHMATCH_TE_CLI") or shutil.which("threatexchange")
    if path is None:
        if os.environ.get("HASHMATCH_REQUIRE_TE"):
            pytest.fail("python-threatexchange's CLI is missing (HASHMATCH_REQUIRE_TE is set)")
        pytest.skip("python-threatexchange is not installed (pip install threatexchange)")
    return path


def te(home: Path, *argv: str) -> str:
    """The threatexchange CLI, with its state in `home`."""
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [te_cli(), *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run(data: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--data-dir", str(data)], Streams(io.StringIO(""), out, err))
    return code, out.getvalue(), err.getvalue()


def entries(data: Path, bank: str) -> set[tuple[str, str, str | None, str | None]]:
    code, out, _ = run(data, "bank", "export", bank, "--format", "jsonl")
    assert code == ExitCode.OK
    rows = [json.loads(line) for line in out.splitlines()]
    return {(r["signal_type"], r["value"], r["label"], r["source"]) for r in rows}


def imported(data: Path, bank: str, text: str, fmt: str, tmp: Path) -> tuple[int, dict, str]:
    f = tmp / f"{bank}.{fmt}"
    f.write_text(text)
    code, out, err = run(data, "bank", "import", bank, str(f), "--format", fmt)
    return code, json.loads(out), err


# -- the rules, line by line ---------------------------------------------------------------
def items(text: str, fmt: Format = Format.TE) -> list[object]:
    return list(read(io.BytesIO(text.encode()), fmt))


def test_each_printed_shape_reads_with_its_provenance() -> None:
    pdq, md5, sha = "ab" * 32, "cd" * 16, "ef" * 32
    got = items(
        f"pdq {pdq}\n"
        f"ROTATE90 pdq {pdq[:-2]}00\n"
        f"video_md5 {md5} 'NCMEC industry' POSITIVE_CLASS\n"
        f'video_sha256 {sha} "it\'s" INVESTIGATION_SEED tag1,tag2\n'
        f"{pdq[:-2]}11 'one collab' DISPUTED\n"  # `dataset -P -s pdq`: no type printed
        f"url_md5 {md5} 'x' POSITIVE_CLASS\n"
        f"pdq {pdq[:-2]}22 'x' NEGATIVE_CLASS\n"
        f"pdq {pdq[:-2]}33 'x' a note\n"
        "pdq\n"
        f"pdq {pdq[:-2]}44 '\\N{{bogus}}' POSITIVE_CLASS\n"
    )
    recs = [(g.entry.signal_type, g.entry.value.hex(), g.entry.label, g.entry.source)
            for g in got if not isinstance(g, RowError)]  # type: ignore[attr-defined]  # fmt: skip
    assert recs == [
        (SignalType.PDQ, pdq, None, None),
        (SignalType.PDQ, pdq[:-2] + "00", None, None),
        (SignalType.MD5, md5, "POSITIVE_CLASS", "NCMEC industry"),
        (SignalType.SHA256, sha, "INVESTIGATION_SEED tag1,tag2", "it's"),
        (SignalType.PDQ, pdq[:-2] + "11", "DISPUTED", "one collab"),
        (SignalType.PDQ, pdq[:-2] + "33", None, "x"),
    ]
    errors = [(g.row, g.code) for g in got if isinstance(g, RowError)]
    assert errors == [
        (6, RowErrorCode.UNSUPPORTED_SIGNAL),
        (7, RowErrorCode.NEGATIVE_CLASS),
        (9, RowErrorCode.BAD_RECORD),
        (10, RowErrorCode.BAD_RECORD),  # a collab no Python literal reads
    ]


def test_dataset_csv_reads_as_csv_and_as_te() -> None:
    pdq = "12" * 32
    text = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{pdq},my list,POSITIVE_CLASS,a b\n"
        f"video_md5,{'34' * 16},my list,NEGATIVE_CLASS,\n"
    )
    for fmt in (Format.CSV, Format.TE):
        got = items(text, fmt)
        first = got[0]
        assert not isinstance(first, RowError)
        assert first.entry.label == "POSITIVE_CLASS a,b"  # type: ignore[attr-defined]
        assert first.entry.source == "my list"  # type: ignore[attr-defined]
        assert isinstance(got[1], RowError) and got[1].code == RowErrorCode.NEGATIVE_CLASS


# -- against python-threatexchange itself --------------------------------------------------
def test_its_hash_output_imports(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    image = tmp_path / "a.jpg"
    image.write_bytes(encode(synthetic_rgb(240, 320, 5), "JPEG", quality=90))
    rotations = te(home, "hash", "--photo-preprocess", "rotations", "photo", str(image))
    video = te(home, "hash", "video", str(image))  # video_md5 and video_sha256 of the file
    assert run(data, "bank", "create", "b", "--signal-types", "pdq,md5,sha256")[0] == 0
    code, report, err = imported(data, "b", rotations + video, "te", tmp_path)
    assert code == ExitCode.OK, err
    assert report["added"] == 10
    got = entries(data, "b")
    assert {st for st, *_ in got} == {"pdq", "md5", "sha256"}
    printed = {line.split()[-1] for line in (rotations + video).splitlines()}
    assert {v for _, v, *_ in got} == printed


def test_export_round_trips_through_it(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    codes = [c.tobytes().hex() for c in random_codes(RNG, 4)]
    md5, sha = "5e" * 16, "7a" * 32
    assert run(data, "bank", "create", "src", "--signal-types", "pdq,md5,sha256")[0] == 0
    rows = "".join(f"{h},label{k},ext{k}\n" for k, h in enumerate(codes))
    rows += f"md5:{md5},checksum\nsha256:{sha}\n"
    assert imported(data, "src", rows, "csv", tmp_path)[0] == ExitCode.OK

    # Left out, said, and not exit 0: photo checksums (it has no type) and every label.
    code, out, err = run(data, "bank", "export", "src", "--format", "te")
    assert code == ExitCode.FAILURE
    assert "1 md5 entries" in err and "1 sha256 entries" in err and "labels" in err
    assert sorted(out.splitlines()) == sorted(f"pdq {h}" for h in codes)  # in id order
    code, out, err = run(
        data, "bank", "export", "src", "--format", "te", "--te-checksums", "video",
        "--allow-lossy",
    )  # fmt: skip
    assert code == ExitCode.OK and "labels" in err and "md5 entries" not in err
    exported = tmp_path / "export.te"
    exported.write_text(out)

    te(home, "config", "collab", "edit", "local_file", "from hashmatch", "--create",
       "--filename", str(exported))  # fmt: skip
    te(home, "fetch")
    want = {("pdq", h) for h in codes} | {("md5", md5), ("sha256", sha)}
    for printed, fmt in (
        (te(home, "dataset", "-P", "--csv"), "csv"),
        (te(home, "dataset", "-P"), "te"),
    ):
        bank = f"back_{fmt}"
        run(data, "bank", "create", bank, "--signal-types", "pdq,md5,sha256")
        code, report, err = imported(data, bank, printed, fmt, tmp_path)
        assert code == ExitCode.OK and report["added"] == len(want), err
        got = entries(data, bank)
        assert {(st, v) for st, v, *_ in got} == want
        assert {(label, source) for *_, label, source in got} == {
            ("INVESTIGATION_SEED", "from hashmatch")
        }

    # A bank of PDQ alone, unlabelled, is lossless: exit 0, nothing said.
    run(data, "bank", "create", "plain")
    imported(data, "plain", "".join(f"{h}\n" for h in codes), "csv", tmp_path)
    code, out, err = run(data, "bank", "export", "plain", "--format", "te")
    assert code == ExitCode.OK and err == "" and len(out.splitlines()) == 4
