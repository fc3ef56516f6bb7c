"""VideoService end to end: `hashmatch serve` as a subprocess, uploads as chunk streams."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.client.video import VideoClient, options
from hashmatch.commands.common import Streams
from hashmatch.config import VideoConfig
from hashmatch.proto import video_pb, video_rpc
from hashmatch.video.hasher import VideoHasher
from tests import server_harness
from tests.video_helpers import write_video

SEEDS = [1, 2, 3, 4, 5, 6]


def _cli(*argv: str) -> list[dict[str, object]]:
    out = io.StringIO()
    code = main(list(argv), Streams(stdin=io.StringIO(), stdout=out, stderr=io.StringIO()))
    assert code == 0, out.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("srvclips")
    return {
        "orig": write_video(d / "orig.mp4", SEEDS),
        "resized": write_video(d / "resized.mp4", SEEDS, size=(96, 72)),
        "other": write_video(d / "other.mp4", [11, 12, 13, 14, 15, 16]),
        "junk": d / "junk.mp4",
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]
) -> Iterator[server_harness.ServerProcess]:
    data = tmp_path_factory.mktemp("videodata")
    spool = data / "spool"
    spool.mkdir()
    (data / "hashmatch.toml").write_text(f'[video]\nspool_dir = "{spool}"\n')
    _cli("bank", "create", "known", "--data-dir", str(data))
    [added] = _cli("video-bank", "add", "known", str(clips["orig"]), "--data-dir", str(data))
    assert added["frames"] == 6
    srv = server_harness.start(data, "--config", str(data / "hashmatch.toml"))
    yield srv
    srv.stop()


def _spooled(srv: server_harness.ServerProcess) -> list[str]:
    fds = Path(f"/proc/{srv.proc.pid}/fd")
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if "hashmatch-video-" in target:
            out.append(target)
    return out


def test_hash_video_equals_the_local_hasher(
    server: server_harness.ServerProcess, clips: dict[str, Path]
) -> None:
    with VideoClient(server.target) as client:
        got = client.hash_video(clips["orig"], seconds_per_hash=0.5)
    want = VideoHasher(VideoConfig(seconds_per_hash=0.5)).hash(clips["orig"])
    assert got.frame_numbers.tolist() == want.frame_numbers.tolist()
    assert (got.hashes == want.hashes).all() and (got.quality == want.quality).all()


def test_match_video_finds_the_bank_entry_with_ranges(
    server: server_harness.ServerProcess, clips: dict[str, Path]
) -> None:
    with VideoClient(server.target) as client:
        r = client.match_video(clips["resized"], content_id="v1")
        assert r["content_id"] == "v1" and r["is_match"]
        [m] = r["matches"]
        assert (m["bank"], m["label"]) == ("known", "orig.mp4")
        assert m["query_match_percent"] == m["target_match_percent"] == 100.0
        assert m["query_ranges"] == m["target_ranges"] == [{"start": 0.0, "end": 6.0}]
        assert client.match_video(clips["other"])["matches"] == []
        # Client-side vPDQ: the same answer from the features alone.
        local = VideoHasher().hash(clips["resized"])
        r2 = client.match_video_hashes(local, options(banks=["known"]))
        assert [x["video_id"] for x in r2["matches"]] == [m["video_id"]]


def test_cli_match_routes_videos_to_the_video_api(
    server: server_harness.ServerProcess, clips: dict[str, Path]
) -> None:
    lines = _cli("match", "--server", server.target, str(clips["resized"]), str(clips["other"]))
    assert [line["is_match"] for line in lines] == [True, False]
    assert lines[0]["path"] == str(clips["resized"])


def test_bad_uploads_get_typed_statuses_and_leave_no_spool(
    server: server_harness.ServerProcess, clips: dict[str, Path]
) -> None:
    stub = video_rpc.VideoServiceStub(server.channel())  # type: ignore[no-untyped-call]
    for chunks in (
        [video_pb.VideoChunk(header=video_pb.VideoHeader(), data=b"\x00not a video" * 100)],
        [video_pb.VideoChunk(header=video_pb.VideoHeader(), data=b"")],
        [],
    ):
        with pytest.raises(grpc.RpcError) as err:
            stub.MatchVideo(iter(chunks))
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # A bank it cannot match against: refused before the upload is read or decoded.
    unseen = video_pb.VideoHeader(options=video_pb.VideoMatchOptions(banks=["nobody:x"]))
    with pytest.raises(grpc.RpcError) as err:
        stub.MatchVideo(iter([video_pb.VideoChunk(header=unseen, data=b"\x00not a video")]))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND

    # A stream that stops mid-upload: the client goes away after a few chunks.
    data = clips["orig"].read_bytes()
    release = threading.Event()

    def stalling() -> Iterator[video_pb.VideoChunk]:
        yield video_pb.VideoChunk(header=video_pb.VideoHeader(), data=data[:1000])
        yield video_pb.VideoChunk(data=data[1000:2000])
        release.wait(60)  # never finishes: the call's deadline cuts it

    with pytest.raises(grpc.RpcError) as err:
        stub.MatchVideo(stalling(), timeout=1.0)
    release.set()
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(100):  # the server notices the cancelled call and closes the spool file
        if not _spooled(server):
            break
        time.sleep(0.1)
    assert _spooled(server) == []
    assert list((server.data_dir / "spool").iterdir()) == []
    # And it still serves.
    with VideoClient(server.target) as client:
        assert client.match_video(clips["resized"])["is_match"]
