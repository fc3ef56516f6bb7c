"""Bulk scans with videos: one row per video, its vPDQ, and the videos matched with ranges."""

from __future__ import annotations

import io
import json
from pathlib import Path

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.scan.output import read_rows
from hashmatch.video.features import VideoHash
from tests import server_harness
from tests.helpers import encode, synthetic_rgb
from tests.video_helpers import write_video


def _main(*argv: str) -> list[dict[str, object]]:
    out = io.StringIO()
    assert main(list(argv), Streams(stdout=out, stderr=io.StringIO())) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_scan_rows_per_video_with_matched_ranges(tmp_path: Path) -> None:
    data, tree = tmp_path / "data", tmp_path / "tree"
    tree.mkdir()
    known = write_video(tmp_path / "known.mp4", [1, 2, 3, 4])
    _main("bank", "create", "vids", "--data-dir", str(data))
    _main("video-bank", "add", "vids", str(known), "--data-dir", str(data))
    (tree / "photo.png").write_bytes(encode(synthetic_rgb(60, 80, seed=3), "PNG"))
    write_video(tree / "copy.mp4", [1, 2, 3, 4], size=(96, 72))
    write_video(tree / "longer.mkv", [9, 1, 2, 3, 4, 8])  # the known clip inside, from 1 s
    write_video(tree / "other.mp4", [11, 12, 13, 14])
    (tree / "broken.mp4").write_bytes(b"\x00" * 100)

    [line] = _main("scan", str(tree), "--out", str(tmp_path / "out"), "--data-dir", str(data))
    assert line["summary"]["files"] == 5  # type: ignore[index]
    rows = {Path(r["path"]).name: r for r in read_rows(tmp_path / "out").to_pylist()}
    assert set(rows) == {"photo.png", "copy.mp4", "longer.mkv", "other.mp4", "broken.mp4"}
    assert rows["photo.png"]["pdq"] and rows["photo.png"]["vpdq"] is None
    assert rows["broken.mp4"]["error_code"] == "NOT_AN_IMAGE"
    copy = rows["copy.mp4"]
    assert copy["video_frames"] == 4 and len(VideoHash.from_bytes(copy["vpdq"])) == 4
    assert copy["is_match"]
    [m] = copy["video_matches"]
    assert (m["bank"], m["label"]) == ("vids", "known.mp4")
    assert m["query_ranges"] == [{"start": 0.0, "end": 4.0}]
    # 4 of the longer video's 6 distinct frames match: under vPDQ's 80% query share.
    assert not rows["longer.mkv"]["is_match"] and rows["longer.mkv"]["video_matches"] == []
    assert not rows["other.mp4"]["is_match"]

    # Re-matching from the stored hashes (no video is read again) gives the same rows.
    (tree / "copy.mp4").unlink()
    out = tmp_path / "rematch.parquet"
    _main("scan-rematch", str(tmp_path / "out"), "--out", str(out), "--data-dir", str(data))
    again = {Path(r["path"]).name: r for r in read_rows(out).to_pylist()}
    assert again["copy.mp4"]["video_matches"] == copy["video_matches"]


def test_scan_against_a_server_matches_videos_there(tmp_path: Path) -> None:
    """scan --server: video rows are matched by the server's MatchVideoHashes (only the
    vPDQ travels), with the same rows as a local scan of the same banks."""
    data, tree = tmp_path / "data", tmp_path / "tree"
    tree.mkdir()
    known = write_video(tmp_path / "known.mp4", [1, 2, 3, 4])
    _main("bank", "create", "vids", "--data-dir", str(data))
    _main("video-bank", "add", "vids", str(known), "--data-dir", str(data))
    write_video(tree / "copy.mp4", [1, 2, 3, 4], size=(96, 72))
    write_video(tree / "other.mp4", [11, 12, 13, 14])
    srv = server_harness.start(data)
    try:
        _main("scan", str(tree), "--out", str(tmp_path / "remote"), "--server", srv.target)
    finally:
        srv.stop()
    _main("scan", str(tree), "--out", str(tmp_path / "local"), "--data-dir", str(data))
    remote = {Path(r["path"]).name: r for r in read_rows(tmp_path / "remote").to_pylist()}
    local = {Path(r["path"]).name: r for r in read_rows(tmp_path / "local").to_pylist()}
    assert remote["copy.mp4"]["is_match"] and not remote["other.mp4"]["is_match"]
    [m] = remote["copy.mp4"]["video_matches"]
    assert (m["bank"], m["label"]) == ("vids", "known.mp4")
    for name in ("copy.mp4", "other.mp4"):
        assert remote[name]["video_matches"] == local[name]["video_matches"]
