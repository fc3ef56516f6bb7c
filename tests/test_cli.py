"""`hashmatch hash`: JSON lines in input order, per-file errors, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from tests.helpers import encode, oracle, pillow_rgb, synthetic_rgb


@pytest.fixture()
def files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "a.png"
    a.write_bytes(encode(synthetic_rgb(80, 100, seed=1), "PNG"))
    b = tmp_path / "b.jpg"
    b.write_bytes(encode(synthetic_rgb(81, 101, seed=2), "JPEG"))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    return [a, b, bad, tmp_path / "missing.png"]


def _run(argv: list[str], stdin: str = "") -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = main(argv, Streams(stdin=io.StringIO(stdin), stdout=out, stderr=io.StringIO()))
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_hash_files_in_order(files: list[Path]) -> None:
    code, lines = _run(["hash", "--backend", "cpu", *map(str, files)])
    assert code == 0
    assert [line["path"] for line in lines] == [str(f) for f in files]
    first = lines[0]
    want, quality = oracle(pillow_rgb(files[0].read_bytes()))
    assert first["pdq"] == want.hex() and first["quality"] == quality
    assert set(first) >= {"path", "pdq", "quality", "md5", "sha256"}
    assert lines[2]["error"] == {"code": "CORRUPT_IMAGE", "message": lines[2]["error"]["message"]}  # type: ignore[index]
    assert lines[3]["error"]["code"] == "UNREADABLE"  # type: ignore[index]


def test_paths_from_stdin_and_dihedral(files: list[Path]) -> None:
    stdin = "\n".join(str(f) for f in files[:2]) + "\n"
    code, lines = _run(["hash", "--backend", "cpu", "--dihedral", "--workers", "2", "-"], stdin)
    assert code == 0
    assert [line["path"] for line in lines] == [str(f) for f in files[:2]]
    assert all(len(line["dihedral"]) == 8 for line in lines)  # type: ignore[arg-type]


@pytest.mark.parametrize("decoder", ["dali", "nvimagecodec"])
def test_hash_with_a_library_decoder(files: list[Path], decoder: str) -> None:
    """--decoder picks the image decoder (here on the CPU backend): the JPEG then decodes
    to Pillow's RGB and hashes as the reference, bit for bit; errors stay per file."""
    pytest.importorskip("nvidia.dali" if decoder == "dali" else "nvidia.nvimgcodec")
    code, lines = _run(["hash", "--backend", "cpu", "--decoder", decoder, *map(str, files)])
    assert code == 0
    want, quality = oracle(pillow_rgb(files[1].read_bytes()))
    assert (lines[1]["pdq"], lines[1]["quality"]) == (want.hex(), quality)
    assert [line.get("error", {}).get("code") for line in lines[2:]] == [  # type: ignore[attr-defined]
        "CORRUPT_IMAGE",
        "UNREADABLE",
    ]


def test_usage_error_exit_code() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["hash"])
    assert exc.value.code == 2


def test_console_script_runs(files: list[Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hashmatch", "hash", "--mode", "cpp", str(files[0])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["pdq"] == oracle(pillow_rgb(files[0].read_bytes()))[0].hex()
