"""Server behaviour under SIGTERM and overload, each on a server of its own."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from hashmatch.client import Client
from hashmatch.proto import pb, rpc
from tests import server_harness
from tests.helpers import descendants, encode, still_running, synthetic_rgb

PHOTO = encode(synthetic_rgb(480, 640, seed=7), "JPEG", quality=90)


def test_sigterm_drains_in_flight_work(tmp_path: Path) -> None:
    srv = server_harness.start(tmp_path, "--workers", "1")
    stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
    req = pb.MatchImagesRequest(
        images=[pb.Image(content_id=str(k), data=PHOTO) for k in range(150)]
    )
    result: dict[str, object] = {}

    def call() -> None:
        try:
            result["resp"] = stub.MatchImages(req, timeout=60)
        except grpc.RpcError as exc:
            result["error"] = exc

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)  # the call is admitted and hashing
    srv.proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert "error" not in result, result.get("error")
    resp = result["resp"]
    assert isinstance(resp, pb.MatchImagesResponse)
    assert len(resp.results) == 150 and all(r.status.code == pb.OK for r in resp.results)
    assert srv.stop() == 0
    # After shutdown nothing answers: a new call is UNAVAILABLE, not hung.
    with pytest.raises(grpc.RpcError) as exc:
        stub.MatchImages(pb.MatchImagesRequest(images=[pb.Image(data=PHOTO)]), timeout=5)
    assert exc.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_overload_gets_resource_exhausted_and_every_call_one_answer(tmp_path: Path) -> None:
    config = tmp_path / "small-queue.toml"
    config.write_text("[batch]\nmax_queue_items = 8\nmax_batch = 4\nworkers = 1\n")
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
    req = pb.MatchImagesRequest(images=[pb.Image(data=PHOTO)] * 4)

    def call(_: int) -> str:
        try:
            resp = stub.MatchImages(req, timeout=60)
            assert len(resp.results) == 4
            return "OK"
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert dict(exc.trailing_metadata() or ()).get("retry-after") == "1"
            return exc.code().name

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(call, range(48)))
    assert len(answers) == 48
    assert set(answers) <= {"OK", "RESOURCE_EXHAUSTED"}
    assert "OK" in answers and "RESOURCE_EXHAUSTED" in answers
    # A request bigger than the whole queue is refused, not left waiting forever.
    with pytest.raises(grpc.RpcError) as exc:
        stub.MatchImages(pb.MatchImagesRequest(images=[pb.Image(data=PHOTO)] * 9), timeout=30)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert srv.stop() == 0


def test_port_in_use_is_a_clear_start_up_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    srv = server_harness.start(tmp_path / "a")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hashmatch", "serve", "--data-dir", str(tmp_path / "b"),
             "--listen", srv.target, "--metrics-listen", ""],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2
        assert f"cannot listen on {srv.target}" in proc.stderr
    finally:
        assert srv.stop() == 0


def test_a_killed_server_takes_its_worker_processes_with_it(tmp_path: Path) -> None:
    """[batch] pool = "process": after SIGKILL of the server, none of its hashing workers
    (or their resource tracker) lives on."""
    config = tmp_path / "p.toml"
    config.write_text('[batch]\npool = "process"\nworkers = 2\n')
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    image = encode(synthetic_rgb(64, 64, seed=1), "PNG")
    batch = pb.MatchImagesRequest(images=[pb.Image(data=image) for _ in range(8)])
    with srv.channel() as channel:
        stub = rpc.MatchServiceStub(channel)  # type: ignore[no-untyped-call]
        results = stub.MatchImages(batch, timeout=60).results
    assert all(r.status.code == pb.OK for r in results)
    helpers = descendants(srv.proc.pid)
    assert helpers, "the process pool started no worker"
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    left = still_running(helpers, within_s=10.0)
    for pid in left:  # so that a regression fails here instead of hanging the harness
        os.kill(pid, signal.SIGKILL)
    srv.stop()
    assert not left, "worker processes outlived the killed server"


def test_the_server_writes_its_snapshot_and_restarts_from_it(tmp_path: Path) -> None:
    """A running server snapshots its index (after snapshot_every changes, and at
    shutdown), so a restart loads it instead of rebuilding from the database."""
    import io

    from hashmatch.cli import main
    from hashmatch.commands.common import Streams
    from hashmatch.index.snapshot import read_snapshot
    from hashmatch.storage.datadir import DataDir

    config = tmp_path / "c.toml"
    config.write_text("[server]\nsnapshot_every = 5\n")
    data = DataDir(tmp_path / "data")
    srv = server_harness.start(data.root, "--config", str(config))
    try:
        assert "warming up" in "".join(srv.log)  # listening came before SERVING
        args = ["--data-dir", str(data.root)]
        main(["bank", "create", "b", *args], Streams(stdout=io.StringIO()))
        values = [f"{k:064x}" for k in range(1, 21)]
        main(["bank", "add", "b", *values, *args], Streams(stdout=io.StringIO()))
        store = data.open_banks()
        want = store.current_sequence()
        store.close()
        end = time.monotonic() + 30
        # 20 changes past snapshot_every: written while running, not only at the end.
        while time.monotonic() < end:
            if data.snapshot.exists() and read_snapshot(data.snapshot)[0]["sequence"] == want:
                break
            time.sleep(0.1)
        assert read_snapshot(data.snapshot)[0]["sequence"] == want
        far = "f" * 64  # far from every value above: matched only once applied
        main(["bank", "add", "b", far, *args], Streams(stdout=io.StringIO()))
        with Client(srv.target) as client:  # followed (one change: under snapshot_every)
            while not client.match_hashes([far])[0].is_match:
                assert time.monotonic() < end, "the change was not followed"
                time.sleep(0.05)
    finally:
        assert srv.stop() == 0
    header, _ = read_snapshot(data.snapshot)
    assert header["sequence"] == want + 1  # written at shutdown
    again = server_harness.start(data.root)
    try:
        assert "loaded from its snapshot" in "".join(again.log)
    finally:
        assert again.stop() == 0
