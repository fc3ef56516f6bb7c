"""`hashmatch loadtest` against real servers on loopback: every mode, a fixed rate, an
overload, the plots; and the runner's open loop counting queueing, not hiding it."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.loadtest.recorder import CallResult
from hashmatch.loadtest.runner import Plan, run
from tests import server_harness
from tests.helpers import encode, synthetic_rgb


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for k in range(6):
        (folder / f"{k}.jpg").write_bytes(encode(synthetic_rgb(120, 160, seed=k), "JPEG"))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_harness.ServerProcess]:
    data = tmp_path_factory.mktemp("server") / "data"
    srv = server_harness.start(data, "--rest-listen", "127.0.0.1:0")
    yield srv
    srv.stop()


def loadtest(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["loadtest", *args], Streams(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def loadtest_json(*args: str) -> dict[str, object]:
    code, out, err = loadtest(*args, "--json", "--no-progress")
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def _target(server: server_harness.ServerProcess, mode: str) -> str:
    return f"http://127.0.0.1:{server.rest_port}" if mode == "rest" else server.target


@pytest.mark.parametrize(
    ("mode", "shape", "count"),
    [
        ("match-images", ["--batch", "4"], 20),
        ("stream", ["--streams", "2", "--window", "3"], 15),
        ("stream", ["--streams", "1", "--window", "8", "--per-message", "8"], 24),
        ("match-hashes", ["--hashes-per-call", "10"], 50),
        ("rest", ["--in-flight", "3"], 12),
    ],
)
def test_every_mode(
    server: server_harness.ServerProcess, images: Path, mode: str, shape: list[str], count: int
) -> None:
    got = loadtest_json("--server", _target(server, mode), "--mode", mode, *shape,
                        "--count", str(count), str(images))  # fmt: skip
    assert got["mode"] == mode
    assert got["items"] == count and got["ok_items"] == count
    assert got["errors_by_status"] == {} and got["errors_by_item_code"] == {}
    latency = got["latency_ms"]
    assert isinstance(latency, dict) and 0 < latency["p50"] <= latency["p99"] <= latency["max"]


def test_table_and_progress(server: server_harness.ServerProcess, images: Path) -> None:
    code, out, err = loadtest("--server", server.target, "--duration", "1.5", str(images))
    assert code == 0
    assert "items/s" in out and "latency ms p50 / p90 / p99 / p99.9 / max" in out
    assert "client CPU per item" in out and "errors by status" in out
    assert "items/s  p99" in err  # the progress line


def test_fixed_rate_is_met(server: server_harness.ServerProcess, images: Path) -> None:
    """40 items/s in calls of 4: ten calls a tenth of a second apart, never faster."""
    got = loadtest_json("--server", server.target, "--rate", "40", "--batch", "4",
                        "--count", "40", str(images))  # fmt: skip
    assert got["items"] == 40 and got["calls"] == 10 and got["ok_items"] == 40
    assert got["target_items_per_s"] == 40.0
    assert isinstance(got["wall_s"], float) and got["wall_s"] >= 0.85  # the last slot: 0.9 s
    assert isinstance(got["items_per_s"], float) and 20 <= got["items_per_s"] <= 48


def test_overload_is_counted(tmp_path: Path, images: Path) -> None:
    """A server with a queue of 8 items under 32 calls of 8 at once: RESOURCE_EXHAUSTED
    per refused call, in the JSON and in the table."""
    config = tmp_path / "small.toml"
    config.write_text("[batch]\nmax_queue_items = 8\nmax_batch = 4\nworkers = 1\n")
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    try:
        args = ["--server", srv.target, "--max", "--in-flight", "32", "--batch", "8",
                "--count", "1600", str(images)]  # fmt: skip
        got = loadtest_json(*args)
        code, out, _ = loadtest(*args, "--no-progress")
    finally:
        srv.stop()
    refused = got["errors_by_status"]
    assert isinstance(refused, dict) and refused.get("RESOURCE_EXHAUSTED", 0) > 0
    assert got["ok_items"] + 8 * refused["RESOURCE_EXHAUSTED"] == got["items"]  # type: ignore[operator]
    assert code == 0 and "RESOURCE_EXHAUSTED" in out


def test_plots_are_pngs(server: server_harness.ServerProcess, images: Path, tmp_path: Path) -> None:
    run_png, sweep_png = tmp_path / "run.png", tmp_path / "sweep.png"
    code, _, err = loadtest("--server", server.target, "--rate", "60", "--batch", "4",
                            "--duration", "1", "--plot", str(run_png), "--no-progress",
                            str(images))  # fmt: skip
    assert code == 0, err
    sweep = loadtest_json("--server", server.target, "--sweep", "20,40", "--batch", "4",
                          "--duration", "1", "--p99-max-ms", "5000", "--plot", str(sweep_png),
                          str(images))  # fmt: skip
    steps = sweep["steps"]
    assert isinstance(steps, list) and [s["target_items_per_s"] for s in steps] == [20.0, 40.0]
    assert sweep["knee_items_per_s"] == 40.0
    for png in (run_png, sweep_png):
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width >= 600 and img.height >= 400


def test_the_client_loads_no_kernels(server: server_harness.ServerProcess, images: Path) -> None:
    """It runs where only the client is installed: no Numba, no decoders."""
    code = (
        "from hashmatch.cli import main\n"
        f"assert main(['loadtest', '--server', '{server.target}', '--count', '8',"
        f" '--batch', '4', '--no-progress', '--json', '{images}']) == 0\n"
        "import sys; print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    modules = set(out.stdout.split("\n")[-2].split())
    heavy = {m for m in modules if m.split(".")[0] in ("numba", "av", "simplejpeg", "pyarrow")}
    assert not heavy and "hashmatch.kernels" not in modules and "hashmatch.hashing" not in modules


def test_bad_arguments(images: Path) -> None:
    assert loadtest("--mode", "rest", "--server", "127.0.0.1:1", str(images))[0] == 2
    assert loadtest("--server", "127.0.0.1:1", "/nonexistent/folder")[0] == 2
    assert loadtest("--sweep", "fast", str(images))[0] == 2


class _Slow:
    """Each call takes 50 ms; one at a time."""

    items_per_call = 1

    async def call(self, k: int) -> CallResult:
        await asyncio.sleep(0.05)
        return CallResult(items=1, ok=1)

    async def close(self) -> None:
        pass


def test_open_loop_counts_queueing_from_the_schedule() -> None:
    """At 100 calls/s against a 20 calls/s server the k-th call waits for k-1 others:
    latency from the slot grows to ~0.45 s by the 20th call. A closed loop would report
    50 ms throughout (coordinated omission); both are measured here."""
    summary, rec = asyncio.run(run(_Slow(), Plan(rate=100, concurrency=1, count=20)))
    assert summary.calls == 20 and max(rec.latencies) >= 0.45 and rec.late_starts >= 10
    closed, _ = asyncio.run(run(_Slow(), Plan(rate=None, concurrency=1, count=20)))
    assert closed.calls == 20 and closed.max_latency_ms < 450
