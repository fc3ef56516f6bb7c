"""`hashmatch loadtest`: load against a running server with your own images.

hashmatch loadtest --server HOST:PORT photos/ --max --duration 30
hashmatch loadtest --server HOST:PORT photos/ --rate 500 --plot run.png
hashmatch loadtest --server HOST:PORT photos/ --sweep 100,200,400,800 --p99-max-ms 50
hashmatch loadtest --mode rest --server http://HOST:8080 photos/ --rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from hashmatch.client.images import DEFAULT_TARGET
from hashmatch.commands.common import ExitCode, Streams, add_api_key, api_key_of
from hashmatch.errors import BadParameter
from hashmatch.loadtest import workloads
from hashmatch.loadtest.images import load_images
from hashmatch.loadtest.progress import ProgressLine
from hashmatch.loadtest.recorder import Recorder, Summary
from hashmatch.loadtest.runner import Plan, run
from hashmatch.loadtest.sweep import Sweep, sweep, sweep_auto, sweep_table

MODES = ("match-images", "stream", "match-hashes", "rest")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGES",
        help="image files, folders (walked), or .txt files of paths",
    )
    p.add_argument(
        "--server",
        default=DEFAULT_TARGET,
        help="HOST:PORT (gRPC), or the REST face's URL for --mode rest",
    )
    p.add_argument("--mode", choices=MODES, default="match-images")
    p.add_argument("--tls-ca", type=Path, metavar="PEM", help="use TLS, trusting this CA")
    add_api_key(p)
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "--rate",
        type=float,
        metavar="ITEMS_PER_S",
        help="open loop: this many items a second, latency counted from each"
        " call's slot in the schedule",
    )
    load.add_argument(
        "--max",
        action="store_true",
        help="closed loop, --in-flight calls at once: the ceiling (default)",
    )
    load.add_argument(
        "--sweep",
        metavar="RATES",
        help="open-loop rates to try in turn, e.g. 100,200,400 (items/s), or auto: doubling"
        " from --sweep-start until two miss the bound, then narrowed to the knee",
    )
    p.add_argument(
        "--p99-max-ms",
        type=float,
        default=100.0,
        help="the sweep's latency bound for its knee (default 100 ms)",
    )
    p.add_argument(
        "--sweep-start", type=float, default=50.0, help="--sweep auto's first rate (items/s)"
    )
    stop = p.add_mutually_exclusive_group()
    stop.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds of load (a sweep: per rate; default 10)",
    )
    stop.add_argument("--count", type=int, metavar="ITEMS", help="stop after this many items")
    p.add_argument(
        "--in-flight",
        type=int,
        default=8,
        metavar="N",
        help="calls at once (closed loop; stream mode: streams x window); the cap on them"
        " in open loop (at least 256)",
    )
    p.add_argument("--batch", type=int, default=32, help="images a MatchImages call")
    p.add_argument("--streams", type=int, default=2, help="MatchStream streams (stream mode)")
    p.add_argument("--window", type=int, default=32, help="images in flight on each stream")
    p.add_argument(
        "--per-message",
        type=int,
        default=1,
        metavar="N",
        help="stream mode: up to N queued images in one stream message (default 1)",
    )
    p.add_argument("--hashes-per-call", type=int, default=1000, help="match-hashes mode")
    p.add_argument("--connections", type=int, default=2, help="gRPC connections to use")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per call")
    p.add_argument("--test", action="store_true", help="match the sandbox's Test bank only")
    p.add_argument("--max-images", type=int, default=2000, help="images read into memory")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="latency pictures (or the sweep's)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.set_defaults(run=run_command)


def _check(args: argparse.Namespace) -> None:
    for name in ("in_flight", "batch", "streams", "window", "hashes_per_call", "connections"):
        if getattr(args, name) < 1:
            raise BadParameter(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate is not None and args.rate <= 0:
        raise BadParameter("--rate must be positive")
    if args.count is not None and args.count < 1:
        raise BadParameter("--count must be at least 1")
    if args.mode == "rest" and not args.server.startswith(("http://", "https://")):
        raise BadParameter("--mode rest takes the REST face's URL: --server http://HOST:PORT")


def _rates(text: str) -> list[float] | None:
    """The rates of --sweep; None for auto."""
    if text.strip().lower() == "auto":
        return None
    try:
        rates = [float(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise BadParameter(f"--sweep takes rates separated by commas, got {text!r}") from None
    if not rates or min(rates) <= 0:
        raise BadParameter("--sweep needs positive rates")
    return rates


def _local_pdq(images: list[bytes]) -> list[bytes]:
    """match-hashes sends hashes: computed here first, not counted in the load."""
    from hashmatch.hashing.engine import Engine  # the kernels: only this mode needs them
    from hashmatch.hashing.signature import Signature

    with Engine() as engine:
        return [r.pdq.value for r in engine.hash_many(images) if isinstance(r, Signature)]


def _workload(args: argparse.Namespace, target: workloads.Target, images: list[bytes]):  # type: ignore[no-untyped-def]
    if args.mode == "match-images":
        return workloads.match_images(target, images, args.batch)
    if args.mode == "stream":
        return workloads.stream(target, images, args.streams, args.window, args.per_message)
    if args.mode == "match-hashes":
        hashes = _local_pdq(images)
        if not hashes:
            raise BadParameter("none of the images could be hashed")
        return workloads.match_hashes(target, hashes, args.hashes_per_call)
    return workloads.rest(target, images, max(args.in_flight, 256))


def _title(args: argparse.Namespace, what: str) -> str:
    shape = {
        "match-images": f"batch {args.batch}",
        "stream": f"{args.streams} streams x {args.window}",
        "match-hashes": f"{args.hashes_per_call} hashes a call",
        "rest": "one image a call",
    }[args.mode]
    return f"hashmatch loadtest {args.mode} ({shape}) at {args.server}: {what}"


async def _one_run(
    args: argparse.Namespace,
    target: workloads.Target,
    images: list[bytes],
    rate: float | None,
    io: Streams,
) -> tuple[Summary, Recorder]:
    workload = _workload(args, target, images)
    in_flight = args.in_flight if rate is None else max(args.in_flight, 256)
    if args.mode == "stream" and rate is None:  # every stream's window full: its ceiling
        in_flight = args.streams * args.window
    plan = Plan(
        rate=rate,
        concurrency=in_flight,
        count=args.count,
        duration_s=None if args.count else args.duration,
    )
    line = None if args.no_progress else ProgressLine(io.stderr)
    try:
        return await run(workload, plan, line)
    finally:
        await workload.close()
        if line is not None:
            line.done()


def run_command(args: argparse.Namespace, io: Streams) -> ExitCode:
    _check(args)
    if args.plot:  # before the load, not after it: matplotlib is an optional extra
        from hashmatch.loadtest.plots import pyplot

        pyplot()
    images = load_images(args.images, args.max_images, 1 << 30)
    server = args.server
    target = workloads.Target(
        server, api_key_of(args, io), args.tls_ca, args.timeout, args.connections, args.test
    )
    if args.sweep:
        return _sweep(args, target, images, _rates(args.sweep), io)
    summary, rec = asyncio.run(_one_run(args, target, images, args.rate, io))
    if args.json:
        io.json_line({"mode": args.mode, "images": len(images)} | summary.to_json())
    else:
        loop = (
            f"open loop at {args.rate:g} items/s"
            if args.rate
            else f"closed loop, {args.in_flight} in flight"
        )
        io.stdout.write(f"{_title(args, loop)}\n{summary.table()}\n")
    if args.plot:
        from hashmatch.loadtest.plots import run_plot

        run_plot(rec, summary, _title(args, "latency"), args.plot)
    return ExitCode.OK


def _sweep(
    args: argparse.Namespace,
    target: workloads.Target,
    images: list[bytes],
    rates: list[float] | None,
    io: Streams,
) -> ExitCode:
    async def at(rate: float) -> Summary:
        if not args.no_progress:
            io.stderr.write(f"rate {rate:g} items/s\n")
        summary, _ = await _one_run(args, target, images, rate, io)
        return summary

    if rates is None:
        result: Sweep = asyncio.run(sweep_auto(at, args.p99_max_ms, args.sweep_start))
    else:
        result = asyncio.run(sweep(rates, at, args.p99_max_ms))
    if args.json:
        knee = result.knee.target_items_per_s if result.knee else None
        io.stdout.write(
            json.dumps(
                {
                    "mode": args.mode,
                    "p99_max_ms": args.p99_max_ms,
                    "knee_items_per_s": knee,
                    "steps": [s.to_json() for s in result.steps],
                }
            )
            + "\n"
        )
    else:
        io.stdout.write(f"{_title(args, 'sweep')}\n{sweep_table(result)}\n")
    if args.plot:
        from hashmatch.loadtest.plots import sweep_plot

        sweep_plot(result.steps, args.p99_max_ms, result.knee, _title(args, "sweep"), args.plot)
    return ExitCode.OK
