"""The README's Python example runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import encode, synthetic_rgb

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    (tmp_path / "photo.jpg").write_bytes(encode(synthetic_rgb(200, 300, seed=5), "JPEG"))
    (tmp_path / "other.png").write_bytes(encode(synthetic_rgb(210, 310, seed=6), "PNG"))
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"[0-9a-f]{64} \d+ 8", lines[0])
    assert lines[2].startswith("NOT_AN_IMAGE")
    assert os.getcwd() == str(tmp_path)
