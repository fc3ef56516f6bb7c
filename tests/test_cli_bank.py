"""The CLI flows of the banks doc, through `main(argv, io)`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from hashmatch.cli import main
from hashmatch.commands.common import ExitCode, Streams
from tests.banks_helpers import flip_bits, random_codes

RNG = np.random.default_rng(31)


def run(data: Path, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--data-dir", str(data)], Streams(io.StringIO(stdin), out, err))
    return code, out.getvalue(), err.getvalue()


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in text.splitlines()]


def test_bank_flow_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    codes = random_codes(RNG, 3)
    hexes = [c.tobytes().hex() for c in codes]
    code, out, _ = run(data, "bank", "create", "ncmec", "--threshold", "20")
    assert code == ExitCode.OK and lines(out)[0]["pdq_threshold"] == 20
    assert run(data, "bank", "create", "ncmec")[0] == ExitCode.FAILURE  # exists
    assert run(data, "bank", "create", "fp", "--kind", "allow")[0] == ExitCode.OK
    csv = tmp_path / "list.csv"
    csv.write_text(f"{hexes[0]},A1,e0\n{hexes[1]},B2,e1\nnot-hex\n")
    code, out, err = run(data, "bank", "import", "ncmec", str(csv))
    assert code == ExitCode.FAILURE  # a bad row; the good ones are in
    assert lines(out)[0]["added"] == 2 and lines(err)[0]["row"] == 3
    code, out, _ = run(data, "bank", "add", "ncmec", hexes[2], "md5:" + "00" * 16, "--label", "A2")
    assert code == ExitCode.OK and lines(out)[0]["added"] == 2
    code, out, _ = run(data, "bank", "stats", "ncmec")
    stats = lines(out)[0]
    assert stats["entries"] == {"pdq": 3, "md5": 1, "sha256": 0} and stats["total"] == 4
    code, out, _ = run(data, "bank", "list")
    assert [b["name"] for b in lines(out)] == ["fp", "ncmec"]
    code, out, _ = run(data, "bank", "export", "ncmec", "--format", "te")
    assert out.splitlines()[0] == f"pdq {hexes[0]}"
    code, out, _ = run(data, "bank", "entries", "ncmec", "--limit", "2")
    assert len(lines(out)) == 2

    near = flip_bits(RNG, codes[0], 20).tobytes().hex()
    far = flip_bits(RNG, codes[1], 21).tobytes().hex()
    stdin = f"{near}\n{far}\nxyz\n\nmd5:{'00' * 16}\n"
    code, out, _ = run(data, "match-hashes", stdin=stdin)
    res = lines(out)
    assert code == ExitCode.OK and len(res) == 4
    assert res[0]["hash"] == near
    assert res[0]["matches"] == [
        {"bank": "ncmec", "entry_id": 1, "signal_type": "pdq", "distance": 20, "label": "A1"}
    ]
    assert res[1]["matches"] == []  # 21 > the bank's 20
    assert res[2]["error"]["code"] == "BAD_PARAMETER"  # type: ignore[index]
    assert res[3]["matches"][0]["label"] == "A2"  # type: ignore[index]
    assert (data / "index.snapshot").exists()
    code, out, _ = run(data, "match-hashes", "--threshold", "21", stdin=f"{far}\n")
    assert lines(out)[0]["matches"][0]["distance"] == 21  # type: ignore[index]

    run(data, "bank", "add", "fp", near)  # a known false positive
    code, out, _ = run(data, "match-hashes", stdin=f"{near}\n")
    [m] = lines(out)[0]["matches"]  # type: ignore[misc]
    assert m["suppressed_by"]["bank"] == "fp"
    code, out, _ = run(data, "match-hashes", "--bank", "fp", stdin=f"{near}\n")
    assert lines(out)[0]["matches"] == []

    code, out, _ = run(data, "bank", "remove", "ncmec", hexes[0])
    assert lines(out)[0]["removed"] == 1
    code, out, _ = run(data, "match-hashes", stdin=f"{near}\n")
    assert lines(out)[0]["matches"] == []
    assert run(data, "bank", "update", "ncmec", "--disable")[0] == ExitCode.OK
    assert run(data, "bank", "delete", "ncmec")[0] == ExitCode.OK
    assert run(data, "bank", "stats", "ncmec")[0] == ExitCode.FAILURE


def test_usage_errors(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run(data, "bank", "create", "b")[0] == ExitCode.OK
    assert run(data, "bank", "add", "b", "zz")[0] == ExitCode.USAGE
    assert run(data, "bank", "import", "b", str(tmp_path / "missing.csv"))[0] == ExitCode.USAGE
    assert run(data, "bank", "create", "bad name")[0] == ExitCode.USAGE
    assert (
        run(data, "match-hashes", "--bank", "nope", stdin="00" * 32 + "\n")[0] == ExitCode.FAILURE
    )
