"""Readiness: a server says SERVING only once its kernels are compiled and a tiny batch
went through every stage; liveness answers from the start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hashmatch.config import load_config
from hashmatch.core.runtime import Runtime
from hashmatch.hashing.decode.turbojpeg import turbojpeg
from hashmatch.kernels import cpu, ycc
from hashmatch.rest.app import create_app
from hashmatch.rest.server import RestServer
from hashmatch.server.app import start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ROOT = Path(__file__).resolve().parents[1]


def scenario(data_dir: Path) -> None:
    """Run in a fresh interpreter: nothing compiled yet when it starts."""
    config = load_config(
        None,
        {
            "": {"data_dir": str(data_dir)},
            "server": {"listen": "127.0.0.1:0", "metrics_listen": ""},
            "engine": {"backend": "cpu"},
            "sandbox": {"enabled": False},
        },
    )

    async def run() -> None:
        runtime = await asyncio.to_thread(Runtime.open, config)
        running = await start_server(runtime)
        rest_server = RestServer(create_app(runtime), "127.0.0.1:0")
        rest_port = await rest_server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)

                async def status(name: str) -> int:
                    req = health_pb2.HealthCheckRequest(service=name)
                    return int((await health.Check(req)).status)

                rest = f"http://127.0.0.1:{rest_port}"
                async with httpx.AsyncClient() as http:
                    assert await status("") == NOT_SERVING
                    assert await status("hashmatch.v1.MatchService") == NOT_SERVING
                    assert await status("liveness") == SERVING
                    assert (await http.get(f"{rest}/health")).status_code == 503
                    assert (await http.get(f"{rest}/health/live")).status_code == 200
                    assert not cpu._rows_gray.signatures  # nothing compiled yet
                    await runtime.start()
                    await runtime.warm_up()
                    # The JPEG (planes, or RGB without libturbojpeg) and PNG (RGB)
                    # resampling kernels are compiled.
                    assert cpu._rows_rgb.signatures
                    if turbojpeg() is not None:
                        assert ycc.rows_ycc.signatures and ycc.luma_plane.signatures
                    runtime.readiness.ready = True
                    await running.set_ready()
                    assert await status("") == SERVING
                    assert await status("hashmatch.v1.MatchService") == SERVING
                    assert (await http.get(f"{rest}/health")).json()["status"] == "SERVING"
        finally:
            await rest_server.stop()
            await running.stop(1.0)
            await runtime.stop()
            runtime.close()

    asyncio.run(run())


def test_not_serving_until_warmed_up_and_live_all_along(tmp_path: Path) -> None:
    code = f"from tests.test_readiness import scenario; scenario({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
