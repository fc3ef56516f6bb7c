"""`hashmatch serve`: the gRPC server on the embedded default (SQLite in ./hashmatch-data)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hashmatch.commands.common import ExitCode, Streams, add_database_url
from hashmatch.config import Config, HashMode, load_config
from hashmatch.storage.postgres import redacted

if TYPE_CHECKING:
    from hashmatch.core.runtime import Runtime
    from hashmatch.server.app import RunningServer

log = logging.getLogger(__name__)


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config (see hashmatch.example.toml)"
    )
    p.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="bank database folder (./hashmatch-data)"
    )
    add_database_url(p, None)  # None: the config's [storage] database_url
    p.add_argument(
        "--audit-key-file", type=Path, metavar="FILE",
        help="the audit chain's key: the same file on every replica of one database"
        " (default: audit.key in the data dir, made on first start)",
    )  # fmt: skip
    p.add_argument("--listen", metavar="HOST:PORT", help="gRPC address (127.0.0.1:50051)")
    p.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="Prometheus /metrics ('' disables)"
    )
    p.add_argument("--rest-listen", metavar="HOST:PORT", help="PhotoDNA-style REST face (off)")
    p.add_argument("--backend", choices=["auto", "cpu", "gpu"])
    p.add_argument("--workers", type=int, help="batches hashed at once (default: one per core)")
    p.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {
        "": {}, "server": {}, "engine": {}, "batch": {}, "storage": {}
    }  # fmt: skip
    if args.data_dir is not None:
        overrides[""]["data_dir"] = str(args.data_dir)
    if args.database_url is not None:
        overrides["storage"]["database_url"] = args.database_url
    if args.audit_key_file is not None:
        overrides["storage"]["audit_key_file"] = str(args.audit_key_file)
    if args.listen is not None:
        overrides["server"]["listen"] = args.listen
    if args.metrics_listen is not None:
        overrides["server"]["metrics_listen"] = args.metrics_listen
    if args.rest_listen is not None:
        overrides["server"]["rest_listen"] = args.rest_listen
    if args.backend is not None:
        overrides["engine"]["backend"] = args.backend
    if args.workers is not None:
        overrides["batch"]["workers"] = args.workers
    return load_config(args.config, overrides, os.environ)


async def _serve(config: Config, io: Streams) -> None:
    """Open, listen (NOT_SERVING), warm up, SERVING until SIGTERM/SIGINT, then drain: stop
    taking calls, finish what was admitted (up to grace_seconds), write the snapshot."""
    # The server's parts (numba kernels, gRPC, the index) load here, not at CLI start-up.
    from hashmatch.core.runtime import Runtime
    from hashmatch.rest.app import create_app
    from hashmatch.rest.server import RestServer
    from hashmatch.server.app import start_server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = await asyncio.to_thread(Runtime.open, config)
    grpc_server, rest = None, None
    try:
        grpc_server = await start_server(runtime)
        rest_port = None
        if config.server.rest_listen:
            rest = RestServer(create_app(runtime), config.server.rest_listen)
            rest_port = await rest.start()
        io.stderr.write(f"hashmatch listening on port {grpc_server.port}: warming up\n")
        io.stderr.flush()
        await runtime.start()
        warm = asyncio.ensure_future(runtime.warm_up())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([warm, stopping], return_when=asyncio.FIRST_COMPLETED)
        if warm.done():
            warm.result()  # a warm-up that failed is a start-up error
            runtime.readiness.ready = True
            await grpc_server.set_ready()
            _say_serving(io, config, runtime, grpc_server.port, grpc_server.metrics_port, rest_port)
            watch = asyncio.ensure_future(_watch_database(runtime, grpc_server))
            await stopping
            watch.cancel()
        log.info("shutting down: draining (grace %.0fs)", config.server.grace_seconds)
    finally:
        grace = config.server.grace_seconds
        end = loop.time() + grace
        runtime.readiness.ready = False
        if grpc_server is not None:
            await grpc_server.drain()
        if rest is not None:
            await rest.stop()
        if grpc_server is not None:
            await grpc_server.stop(grace)
        await runtime.stop(max(0.5, end - loop.time()))
        runtime.close()


DATABASE_UNHEALTHY_AFTER_S = 5.0


async def _watch_database(runtime: Runtime, server: RunningServer) -> None:
    """NOT_SERVING while the banks' database has been unreachable for a while (the change
    log cannot be followed: load balancers send calls elsewhere), SERVING once it is back.
    Calls still answered meanwhile match against the in-memory index."""
    follower = runtime.follower
    while True:
        await asyncio.sleep(1.0)
        since = follower.failing_since
        healthy = since is None or time.monotonic() - since < DATABASE_UNHEALTHY_AFTER_S
        if healthy != runtime.readiness.ready:
            runtime.readiness.ready = healthy
            await server.set_ready(healthy)
            if healthy:
                log.warning("the database is reachable again: SERVING")
            else:
                log.error("the database is unreachable (%s): NOT_SERVING", follower.error)


def _say_serving(
    io: Streams,
    config: Config,
    runtime: Runtime,
    port: int,
    metrics_port: int | None,
    rest_port: int | None,
) -> None:
    metrics = f", metrics on port {metrics_port}" if metrics_port else ""
    rest = f", REST on port {rest_port}" if rest_port else ""
    b = runtime.batcher
    url = config.storage.database_url
    banks = f", banks in {redacted(url)}" if url else ""
    io.stderr.write(
        f"hashmatch serving on port {port} (data {config.data_dir}{banks}, "
        f"backend {b.backend_name}, decoder {b.decoder}{metrics}{rest})\n"
    )
    from hashmatch.hashing.decode.images import jpeg_path  # the engine's: loaded by now

    engine = config.engine
    if engine.mode is HashMode.EXACT and engine.jpeg_planes and jpeg_path(engine) != "planes":
        io.stderr.write(
            "note: libturbojpeg not found: exact JPEG hashes are decoded through RGB (the"
            " same hashes, slower; apt install libturbojpeg0)\n"
        )
    io.stderr.flush()


def no_core_dumps() -> None:
    """Images live in this process's memory: a crash must not write them to a core file."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = config_from(args)
    no_core_dumps()
    asyncio.run(_serve(config, io))
    _exit_now_if_work_is_left()
    return ExitCode.OK


def _exit_now_if_work_is_left() -> None:
    """A batch still hashing past the grace period (abandoned by the batcher) would keep
    its worker thread, and so the process, alive: everything is flushed by now."""
    left = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if left:
        log.warning("work still running after the grace period: exiting without it")
        logging.shutdown()
        sys.stderr.flush()
        os._exit(ExitCode.OK)
