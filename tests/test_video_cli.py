"""`hashmatch hash-video` and `hashmatch compare-video`."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.video.features import VideoHash
from tests.video_helpers import write_video


def _run(argv: list[str]) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = main(argv, Streams(stdin=io.StringIO(), stdout=out, stderr=io.StringIO()))
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_hash_video_json_and_reference_text(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", [1, 2, 3])
    code, lines = _run(["hash-video", str(clip), str(tmp_path / "missing.mp4")])
    assert code == 1  # one of the two failed
    assert lines[0]["frames"] == 3
    features = lines[0]["features"]
    assert isinstance(features, list)
    assert [f["frame"] for f in features] == [0, 10, 20]
    assert lines[1]["error"] == {"code": "UNREADABLE", "message": "no such file"}

    code, lines = _run(
        ["hash-video", "--seconds-per-hash", "0", "--output-dir", str(tmp_path / "out"), str(clip)]
    )
    assert code == 0
    text = (tmp_path / "out" / "clip.txt").read_text()
    assert VideoHash.from_text(text).frame_numbers.tolist() == list(range(30))
    assert text.splitlines()[1].split(",")[3] == "0.100"


def test_compare_video_files_and_hash_files(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.mp4", [1, 2, 3, 4])
    b = write_video(tmp_path / "b.mp4", [1, 2, 3, 4], size=(96, 72))
    c = write_video(tmp_path / "c.mp4", [7, 8, 9, 10])
    _run(["hash-video", "--output-dir", str(tmp_path), str(a)])
    code, [line] = _run(["compare-video", str(tmp_path / "a.txt"), str(b)])
    assert code == 0 and line["is_match"] is True
    assert line["query_ranges"] == [{"start": 0.0, "end": 4.0}]
    code, [line] = _run(["compare-video", str(a), str(c)])
    assert line["is_match"] is False and line["query_match_percent"] == 0.0
