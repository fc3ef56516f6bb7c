"""The gRPC server against the engine in-process, same machine, same run.

    python -m bench.server_bench            # full run, figures for bench/RESULTS.md
    python -m bench.server_bench --quick
    python -m bench.server_bench --backend gpu --pdq-index gpu   # issue 6 (d), on a GPU

1. images/s of Engine.hash_many in-process (workers = cores, threads), 640x480 JPEGs;
2. the same images through `hashmatch serve` (a subprocess) from this separate client
   process: MatchImages (batches of 32, 4 concurrent calls) and one MatchStream;
3. PhotoDNA-style, one image per call (unary, batch 1): sequential and 8 concurrent;
4. latency p50/p99 of single-image calls at half of the measured peak rate (open loop);
5. MatchHashes hashes/s against a 1M-entry PDQ bank (1,000 hashes per call);
6. what bounds the ratio, same run: a null gRPC server (transport cost), one lookup's server
   CPU, and the same work as MatchImages in-process (hash, then match against the bank).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from bench.hash_bench import make_jpegs
from bench.timing import median_seconds
from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.client import Client
from hashmatch.config import BackendChoice, EngineConfig, IndexChoice
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
from hashmatch.matching.model import HashQuery, image_queries
from hashmatch.proto import pb, rpc
from hashmatch.storage.datadir import DataDir
from tests import server_harness


def rate(n_items: int, fn: Callable[[], object], runs: int) -> float:
    return n_items / median_seconds(fn, runs)


def build_bank(data_dir: Path, n: int, planted: np.ndarray) -> None:
    store = DataDir(data_dir).open_banks()
    store.create_bank("bench", BankSettings())
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    codes[: len(planted)] = planted
    step = 200_000
    for lo in range(0, n, step):
        store.write_entries(
            "bench", (NewEntry(SignalType.PDQ, c.tobytes()) for c in codes[lo : lo + step])
        )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--bank-size", type=int, default=1_000_000)
    parser.add_argument("--tune", action="store_true", help="only compare batcher settings")
    parser.add_argument(
        "--backend", choices=["cpu", "gpu"], default="cpu", help="server's and in-process's"
    )
    parser.add_argument(
        "--pdq-index", choices=["mih", "gpu"], default="mih", help="server's and in-process's"
    )
    parser.add_argument(
        "--loadtest-plot",
        type=Path,
        metavar="PNG",
        help="also run `hashmatch loadtest` (closed loop, then a sweep) against the same server",
    )
    args = parser.parse_args()
    if args.tune:
        tune(args.runs)
        return
    runs, n_img, bank_size = (
        (2, 64, 50_000) if args.quick else (args.runs, args.images, args.bank_size)
    )
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    files = make_jpegs(640, 480, 16)
    images = [files[k % len(files)] for k in range(n_img)]

    backend, pdq_index = BackendChoice(args.backend), IndexChoice(args.pdq_index)
    print(f"backend: {backend.value}, PDQ index: {pdq_index.value}")
    with Engine(EngineConfig(workers=cores, backend=backend)) as eng:
        eng.hash_many(images[:cores])  # JIT compile and pool start outside the CPU count
        c0 = time.process_time()
        in_process = rate(n_img, lambda: eng.hash_many(images), runs)
        engine_ms = 1000 * (time.process_time() - c0) / (n_img * (runs + 1))
    floor_rate, floor_server_ms, floor_client_ms, floor_low_p50 = transport_floor(images, runs)

    rng = np.random.default_rng(1)
    queries = rng.integers(0, 256, (1000, 32), dtype=np.uint8)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_bank(Path(tmp), bank_size, queries[:333])
        build_s = time.perf_counter() - t0
        in_process_match, match_cpu_ms, index_ms = hash_and_match_rate(
            Path(tmp), images, cores, runs, backend, pdq_index, queries
        )
        engine_one_ms = engine_one_image_ms(images[0], runs, backend)
        engine_paced_ms = engine_one_image_ms(images[0], runs, backend, per_s=LOW_LOAD_PER_S)
        config = Path(tmp) / "bench.toml"
        config.write_text(f'[server]\npdq_index = "{pdq_index.value}"\n')
        srv = server_harness.start(
            Path(tmp),
            *("--workers", str(cores), "--rest-listen", "127.0.0.1:0"),
            *("--backend", backend.value, "--config", str(config)),
            timeout=300,
        )
        try:
            measured, lookup_ms, match_images, checks = measure(
                srv, images, queries, runs, in_process
            )
            rows += measured
            if args.loadtest_plot:
                folder = Path(tmp) / "images"
                folder.mkdir()
                for k, data in enumerate(files):
                    (folder / f"{k}.jpg").write_bytes(data)
                loadtest_steps(srv, folder, args.loadtest_plot)
        finally:
            srv.stop()
    print(f"\nbank: {bank_size:,} PDQ entries (SQLite write {build_s:.1f} s)")
    print("\n| path | throughput | vs in-process engine |\n|---|---|---|")
    print(f"| engine in-process, hash_many, {cores} threads | {in_process:.0f} img/s | 1.00 |")
    print(
        f"| engine + matcher in-process (hash_many, then match against the bank) | "
        f"{in_process_match:.0f} img/s | {in_process_match / in_process:.2f} |"
    )
    for name, value, ratio in rows:
        print(f"| {name} | {value} | {ratio} |")
    ceiling = cores / (engine_ms + floor_server_ms + floor_client_ms) * 1000
    print(
        "\nThe gRPC floor, same requests and client, a server that only parses them: "
        f"{floor_rate:.0f} img/s; CPU per image: server {floor_server_ms:.3f} ms, client "
        f"{floor_client_ms:.3f} ms, the engine {engine_ms:.3f} ms (in-process, {cores} threads)."
        f"\nWith client and server on these {cores} cores, engine + gRPC alone cap MatchImages "
        f"at {ceiling:.0f} img/s = {ceiling / in_process:.2f} of in-process."
    )
    # Each image's PDQ is one range search against the bank: MatchHashes measures what a
    # lookup costs the server (with its own, smaller, gRPC share per hash).
    with_lookup = cores / (engine_ms + floor_server_ms + floor_client_ms + lookup_ms) * 1000
    print(
        f"Adding the index lookup each image needs ({lookup_ms:.3f} ms of server CPU per PDQ "
        f"hash, from MatchHashes): {with_lookup:.0f} img/s = {with_lookup / in_process:.2f} "
        "of in-process, before the server's own per-image work (results, audit, metrics)."
    )
    print(
        "The same work in-process (hash, then match against the same bank) against "
        f"MatchImages: {match_images:.0f} / {in_process_match:.0f} img/s = "
        f"{match_images / in_process_match:.2f}."
    )
    budget = (engine_ms + floor_server_ms) * 1.05
    same_work = (match_cpu_ms + floor_server_ms) * 1.05
    print(
        "\nTargets (issue 21):"
        f"\n- MatchStream / MatchImages: {checks['stream_ratio']:.2f} (>= 0.95); per second of"
        f" server CPU (client and server share {cores} cores): {checks['stream_cpu_ratio']:.2f};"
        f" with 32 images a stream message: {checks['packed_ratio']:.2f}"
        f"\n- server CPU per image {checks['server_ms']:.3f} ms <= (engine {engine_ms:.3f} +"
        f" gRPC floor {floor_server_ms:.3f}) x 1.05 = {budget:.3f} ms; against the same work"
        f" in-process (hash, then match: {match_cpu_ms:.3f} ms): {same_work:.3f} ms"
        f"\n- one image at low load: p50 {checks['low_p50']:.1f} ms <= engine alone"
        f" {engine_one_ms:.2f} + 1.5 = {engine_one_ms + 1.5:.2f} ms; the engine alone at the"
        f" same {LOW_LOAD_PER_S:.0f} calls/s: {engine_paced_ms:.2f} ms (+ 1.5 ="
        f" {engine_paced_ms + 1.5:.2f} ms), a null gRPC server's p50 at that rate:"
        f" {floor_low_p50:.2f} ms; p99 {checks['low_p99']:.1f} ms <= 3 x p50 ="
        f" {3 * checks['low_p50']:.1f} ms"
        f"\n- MatchHashes server CPU per hash {lookup_ms:.3f} ms <= 2 x the index's own"
        f" {index_ms:.3f} ms = {2 * index_ms:.3f} ms"
    )


def loadtest_steps(srv: server_harness.ServerProcess, folder: Path, plot: Path) -> None:
    """`hashmatch loadtest` as a user runs it, against this server: the MatchImages shape
    measured above (batches of 32, 4 calls in flight), then an automatic sweep."""
    base = [sys.executable, "-m", "hashmatch", "loadtest", "--server", srv.target, str(folder)]
    for extra in (
        ["--max", "--in-flight", "4", "--batch", "32", "--duration", "20"],
        ["--sweep", "auto", "--sweep-start", "100", "--batch", "32", "--duration", "10",
         "--p99-max-ms", "100", "--plot", str(plot)],
    ):  # fmt: skip
        print(f"\n$ hashmatch loadtest {' '.join(extra)}", flush=True)
        subprocess.run([*base, *extra, "--no-progress"], check=True)


def hash_and_match_rate(
    data_dir: Path,
    images: list[bytes],
    cores: int,
    runs: int,
    backend: BackendChoice,
    pdq_index: IndexChoice,
    queries: np.ndarray,
) -> tuple[float, float, float]:
    """images/s of what MatchImages does, in-process: hash, then look up every image's
    PDQ, MD5 and SHA-256 in the bank (one match call, like a server batch), with its CPU
    ms per image; and the index's own CPU time per PDQ query (ms), the queries
    MatchHashes sends below."""
    store = DataDir(data_dir).open_banks()
    matcher = BankMatcher.open(store, MatcherConfig(pdq_index=pdq_index))
    try:
        with Engine(EngineConfig(workers=cores, backend=backend)) as eng:

            def once() -> None:
                signed = [r for r in eng.hash_many(images) if isinstance(r, Signature)]
                matcher.match([q for sig in signed for q in image_queries(sig, False)])

            c0 = time.process_time()
            images_per_s = rate(len(images), once, runs)
            cpu_ms = 1000 * (time.process_time() - c0) / (len(images) * (runs + 1))
        pdq = [HashQuery(SignalType.PDQ, (q.tobytes(),)) for q in queries]
        matcher.match(pdq)
        c0 = time.process_time()
        for _ in range(runs):
            matcher.match(pdq)
        index_ms = 1000 * (time.process_time() - c0) / (len(pdq) * runs)
        return images_per_s, cpu_ms, index_ms
    finally:
        matcher.close()
        store.close()


LOW_LOAD_PER_S = 20.0


def engine_one_image_ms(
    image: bytes, runs: int, backend: BackendChoice, per_s: float | None = None
) -> float:
    """Wall time of the engine for one image, alone, on one thread (the floor a single
    image's call latency is judged against): back to back, or paced at per_s calls a
    second as the low-load latency is (an idle machine between calls is slower: cold
    caches and a sleeping CPU)."""
    with Engine(EngineConfig(workers=1, backend=backend)) as eng:
        eng.hash_many([image])
        if per_s is None:
            return 1000 * median_seconds(lambda: eng.hash_many([image]), max(runs, 5) * 4)
        times = []
        for _ in range(int(per_s * 5)):
            t0 = time.perf_counter()
            eng.hash_many([image])
            times.append(time.perf_counter() - t0)
            time.sleep(max(0.0, 1 / per_s - times[-1]))
        return 1000 * statistics.median(times)


def measure(
    srv: server_harness.ServerProcess,
    images: list[bytes],
    queries: np.ndarray,
    runs: int,
    in_process: float,
) -> tuple[list[tuple[str, str, str]], float, float, dict[str, float]]:
    """The table rows, the server's CPU per PDQ lookup in MatchHashes (ms), the
    MatchImages rate, and the figures the targets are judged on."""
    n = len(images)
    out: list[tuple[str, str, str]] = []
    client = Client(srv.target)
    stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
    batches = [
        pb.MatchImagesRequest(
            images=[
                pb.Image(content_id=str(k), data=d) for k, d in enumerate(images[lo : lo + 32])
            ],
            options=pb.MatchOptions(omit_signatures=True),
        )
        for lo in range(0, n, 32)
    ]
    with ThreadPoolExecutor(4) as pool:
        s0, c0 = cpu_seconds(srv.proc.pid), cpu_seconds(os.getpid())
        r = r_match = rate(n, lambda: list(pool.map(stub.MatchImages, batches)), runs)
        server_ms = 1000 * (cpu_seconds(srv.proc.pid) - s0) / (n * (runs + 1))
        client_ms = 1000 * (cpu_seconds(os.getpid()) - c0) / (n * (runs + 1))
    out.append(
        (
            "MatchImages, batches of 32, 4 calls in flight",
            f"{r:.0f} img/s (CPU/img: server {server_ms:.3f} ms, client {client_ms:.3f} ms)",
            f"{r / in_process:.2f}",
        )
    )

    def stream_row(per_message: int, name: str) -> tuple[float, float]:
        """One stream of every image, per_message images a message: its row; img/s and the
        server's CPU ms per image."""

        def once() -> None:
            pairs = ((str(k), d) for k, d in enumerate(images))
            assert sum(1 for _ in client.match_stream(pairs, per_message=per_message)) == n

        s0, c0 = cpu_seconds(srv.proc.pid), cpu_seconds(os.getpid())
        r = rate(n, once, runs)
        server = 1000 * (cpu_seconds(srv.proc.pid) - s0) / (n * (runs + 1))
        client_ms = 1000 * (cpu_seconds(os.getpid()) - c0) / (n * (runs + 1))
        out.append(
            (
                name,
                f"{r:.0f} img/s (CPU/img: server {server:.3f} ms, client {client_ms:.3f} ms;"
                f" {r / r_match:.2f} of MatchImages)",
                f"{r / in_process:.2f}",
            )
        )
        return r, server

    r_stream, stream_server_ms = stream_row(1, "MatchStream, one stream")
    r_packed, _ = stream_row(32, "MatchStream, one stream, 32 images a message")

    singles = [pb.MatchImagesRequest(images=[pb.Image(data=d)]) for d in images[: max(n // 4, 16)]]
    r1 = rate(len(singles), lambda: [stub.MatchImages(s) for s in singles], runs)
    out.append(
        (
            "one image per call, sequential (PhotoDNA style)",
            f"{r1:.0f} img/s",
            f"{r1 / in_process:.2f}",
        )
    )
    with ThreadPoolExecutor(8) as pool:
        r8 = rate(len(singles), lambda: list(pool.map(stub.MatchImages, singles)), runs)
    out.append(("one image per call, 8 in flight", f"{r8:.0f} img/s", f"{r8 / in_process:.2f}"))

    def rest_match(data: bytes) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{srv.rest_port}/photodna/v1.0/Match",
            data=data, headers={"Content-Type": "image/jpeg"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert json.loads(resp.read())["Status"]["Code"] == 3000

    bodies = images[: len(singles)]
    rr = rate(len(bodies), lambda: [rest_match(d) for d in bodies], runs)
    out.append(
        (
            "REST /photodna/v1.0/Match, one image per call, sequential",
            f"{rr:.0f} img/s",
            f"{rr / in_process:.2f}",
        )
    )
    with ThreadPoolExecutor(8) as pool:
        rr8 = rate(len(bodies), lambda: list(pool.map(rest_match, bodies)), runs)
    out.append(
        ("REST /photodna/v1.0/Match, 8 in flight", f"{rr8:.0f} img/s", f"{rr8 / in_process:.2f}")
    )

    low50, low99 = open_loop_latency(stub, images[0], LOW_LOAD_PER_S, seconds=10 if runs > 2 else 4)
    out.append(
        (
            f"latency at low load ({LOW_LOAD_PER_S:.0f} calls/s, 1 image each)",
            f"p50 {low50:.1f} ms, p99 {low99:.1f} ms ({low99 / low50:.1f}x p50)",
            "-",
        )
    )
    p50, p99 = open_loop_latency(stub, images[0], max(r8, 1.0) / 2, seconds=10 if runs > 2 else 4)
    out.append(
        (
            f"latency at half load ({max(r8, 1.0) / 2:.0f} calls/s, 1 image each)",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            "-",
        )
    )

    hashes = [q.tobytes() for q in queries]
    found = client.match_hashes(hashes, batch_size=1000)
    planted = sum(o.is_match for o in found)
    s0 = cpu_seconds(srv.proc.pid)
    rh = rate(len(hashes), lambda: client.match_hashes(hashes, batch_size=1000), runs)
    lookup_ms = 1000 * (cpu_seconds(srv.proc.pid) - s0) / (len(hashes) * (runs + 1))
    out.append(
        (
            f"MatchHashes, 1,000 per call ({planted} of 1,000 planted hits found)",
            f"{rh:.0f} hashes/s (server CPU {lookup_ms:.3f} ms/hash)",
            "-",
        )
    )
    client.close()
    checks = {"stream_ratio": r_stream / r_match, "server_ms": server_ms, "low_p50": low50,
              "low_p99": low99, "stream_cpu_ratio": server_ms / stream_server_ms,
              "packed_ratio": r_packed / r_match}  # fmt: skip
    return out, lookup_ms, r_match, checks


def _null_server(port_out: multiprocessing.queues.Queue[int], max_bytes: int) -> None:
    """MatchImages that parses the request, touches every image and answers nothing."""

    async def serve() -> None:
        async def handler(
            req: pb.MatchImagesRequest, ctx: grpc.aio.ServicerContext
        ) -> pb.MatchImagesResponse:
            for im in req.images:
                _ = im.data
            return pb.MatchImagesResponse()

        method = grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=pb.MatchImagesRequest.FromString,
            response_serializer=pb.MatchImagesResponse.SerializeToString,
        )
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_bytes)])
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "hashmatch.v1.MatchService", {"MatchImages": method}
                )
            ]
        )
        port_out.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def transport_floor(images: list[bytes], runs: int) -> tuple[float, float, float, float]:
    """gRPC alone, same requests, same client: img/s, CPU ms per image of the server
    and of the client, and the p50 latency (ms) of one-image calls at low load. What any
    Python gRPC server pays before its first hash."""
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.queues.Queue[int] = ctx.Queue()
    proc = ctx.Process(target=_null_server, args=(ports, 64 << 20), daemon=True)
    proc.start()
    try:
        channel = grpc.insecure_channel(
            f"127.0.0.1:{ports.get(timeout=60)}",
            options=[("grpc.max_send_message_length", 64 << 20)],
        )
        stub = rpc.MatchServiceStub(channel)  # type: ignore[no-untyped-call]
        batches = [
            pb.MatchImagesRequest(
                images=[
                    pb.Image(content_id=str(k), data=d) for k, d in enumerate(images[lo : lo + 32])
                ]
            )
            for lo in range(0, len(images), 32)
        ]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(stub.MatchImages, batches))
            s0, c0 = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
            r = rate(len(images), lambda: list(pool.map(stub.MatchImages, batches)), runs)
            n = len(images) * (runs + 1)  # rate() warms up once
            server_ms = 1000 * (cpu_seconds(proc.pid) - s0) / n
            client_ms = 1000 * (cpu_seconds(os.getpid()) - c0) / n
        low_p50, _ = open_loop_latency(stub, images[0], LOW_LOAD_PER_S, seconds=5)
        channel.close()
        return r, server_ms, client_ms, low_p50
    finally:
        proc.kill()


def tune(runs: int) -> None:
    """Throughput and single-image latency for a few batcher settings (the defaults' basis)."""
    cores = len(os.sched_getaffinity(0))
    files = make_jpegs(640, 480, 16)
    images = [files[k % len(files)] for k in range(256)]
    print(
        "| max_batch | max_wait_ms | MatchImages img/s (32 per call, 4 in flight) |"
        " one image per call, p50 ms |"
    )
    print("|---|---|---|---|")
    for max_batch, max_wait in [(8, 1.0), (32, 2.0), (64, 5.0), (128, 10.0)]:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "c.toml"
            cfg.write_text(f"[batch]\nmax_batch = {max_batch}\nmax_wait_ms = {max_wait}\n")
            srv = server_harness.start(
                Path(tmp) / "d", "--config", str(cfg), "--workers", str(cores)
            )
            try:
                stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
                batches = [
                    pb.MatchImagesRequest(images=[pb.Image(data=d) for d in images[lo : lo + 32]])
                    for lo in range(0, len(images), 32)
                ]
                with ThreadPoolExecutor(4) as pool:
                    call = stub.MatchImages
                    r = rate(len(images), lambda c=call, b=batches: list(pool.map(c, b)), runs)
                one = pb.MatchImagesRequest(images=[pb.Image(data=images[0])])
                lat = []
                for _ in range(50):
                    t0 = time.perf_counter()
                    stub.MatchImages(one)
                    lat.append((time.perf_counter() - t0) * 1000)
                print(f"| {max_batch} | {max_wait} | {r:.0f} | {statistics.median(lat):.1f} |")
            finally:
                srv.stop()


def open_loop_latency(
    stub: rpc.MatchServiceStub, image: bytes, per_s: float, seconds: float
) -> tuple[float, float]:
    req = pb.MatchImagesRequest(images=[pb.Image(data=image)])
    lat: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        t0 = time.perf_counter()
        stub.MatchImages(req)
        with lock:
            lat.append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(64) as pool:
        start = time.perf_counter()
        k = 0
        while (now := time.perf_counter() - start) < seconds:
            due = k / per_s
            if now < due:
                time.sleep(due - now)
            pool.submit(one)
            k += 1
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


if __name__ == "__main__":
    main()
