"""The README's Python examples run as written (the client one against a real server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import server_harness
from tests.helpers import encode, synthetic_rgb

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 4, "README should have the client, banks, engine and video examples"
    return blocks


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "photo.jpg").write_bytes(encode(synthetic_rgb(200, 300, seed=5), "JPEG"))
    (tmp_path / "other.png").write_bytes(encode(synthetic_rgb(210, 310, seed=6), "PNG"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_on_a_server(example: str, data: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The example run against a real server over `data`: the lines it printed."""
    capsys.readouterr()
    srv = server_harness.start(data)
    try:
        exec(compile(example.replace("127.0.0.1:50051", srv.target), str(README), "exec"), {})
    finally:
        assert srv.stop() == 0
    return capsys.readouterr().out.splitlines()


def test_readme_engine_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (engine_example,) = [b for b in _blocks() if "Engine(" in b]
    exec(compile(engine_example, str(README), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"[0-9a-f]{64} \d+ 8", lines[0])
    assert lines[2].startswith("NOT_AN_IMAGE")


def test_readme_client_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (client_example,) = [b for b in _blocks() if "Client(" in b and "VideoClient" not in b]
    lines = _run_on_a_server(client_example, workdir / "data", capsys)
    assert lines[0] == "upload-1 OK False []"
    assert "is_match=False" in lines[1] and "code='OK'" in lines[1]
    assert lines[2] == "upload-2 False"


def test_readme_video_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hashmatch.cli import main
    from tests.video_helpers import write_video

    (example,) = [b for b in _blocks() if "VideoClient(" in b]
    write_video(workdir / "clip.mp4", [1, 2, 3, 4], size=(96, 72))
    write_video(workdir / "original.mp4", [1, 2, 3, 4])
    data = workdir / "data"
    assert main(["bank", "create", "known-videos", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    add = ["video-bank", "add", "known-videos", "original.mp4", "--data-dir", str(data)]
    assert main(add) == 0
    lines = _run_on_a_server(example, data, capsys)
    assert lines == ["original.mp4 100.0 [{'start': 0.0, 'end': 4.0}]", "4 True"]


def test_readme_bank_service_example(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.tenancy_setup import admin, key, tenant

    (example,) = [b for b in _blocks() if "BankServiceStub(" in b]
    data = workdir / "data"
    admin(data, "bootstrap")
    tenant(data, "acme", "approve")
    monkeypatch.setenv("HASHMATCH_API_KEY", key(data, "acme", "bank-admin"))
    rows = [f"{k:064x},A2,r{k}" for k in range(1, 20_001)] + ["nothex,A2,bad"]  # 1.4 MB
    (workdir / "list.csv").write_text("\n".join([*rows, rows[0]]) + "\n")
    lines = _run_on_a_server(example, data, capsys)
    assert lines == ["added 1", "imported 20000 duplicates 1 errors 1"]
