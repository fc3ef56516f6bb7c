"""Soak and overload: drive a server past its capacity with mixed calls, stalled streams and
clients that vanish; every call must get exactly one answer, memory must stay flat.

    python -m tools.soak --seconds 300            # starts its own server (a subprocess)
    python -m tools.soak --seconds 60 --target 127.0.0.1:50051

Each worker loops over: MatchImages (batches of 1-64, short deadlines some of the time),
MatchHashes, a MatchStream read to the end, a stream abandoned mid-way, a stream that stops
reading. Answers are counted by status; "lost" (no answer) must stay 0. The server's resident
memory is sampled every second; growth after the first third of the run is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from hashmatch.proto import pb, rpc

OK_CODES = {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "CANCELLED"}


@dataclass
class SoakReport:
    seconds: float = 0.0
    calls: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # admitted (OK) unary calls
    rss_mb: list[float] = field(default_factory=list)

    @property
    def rss_growth_mb(self) -> float:
        if len(self.rss_mb) < 6:
            return 0.0
        # Medians of the middle and last thirds: a leak moves the whole curve up, a burst
        # of allocations that is given back (a peak) does not.
        third = len(self.rss_mb) // 3
        return statistics.median(self.rss_mb[2 * third :]) - statistics.median(
            self.rss_mb[third : 2 * third]
        )

    @property
    def ok(self) -> bool:
        return self.lost == 0 and set(self.answers) <= OK_CODES and self.rss_growth_mb < 150

    def to_json(self) -> dict[str, object]:
        lat = sorted(self.latencies_ms) or [0.0]
        return {
            "seconds": round(self.seconds, 1),
            "calls": self.calls,
            "answers": dict(self.answers.most_common()),
            "lost": self.lost,
            "admitted_latency_ms": {
                "p50": round(lat[len(lat) // 2], 1),
                "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
                "max": round(lat[-1], 1),
            },
            "server_rss_mb": {
                "first": round(self.rss_mb[0], 1) if self.rss_mb else None,
                "max": round(max(self.rss_mb), 1) if self.rss_mb else None,
                "growth_after_warmup": round(self.rss_growth_mb, 1),
                # One sample a minute (the median of that minute's samples): the curve
                # that tells a plateau from a slow leak.
                "per_minute": [
                    round(statistics.median(self.rss_mb[k : k + 60]), 1)
                    for k in range(0, len(self.rss_mb), 60)
                ],
            },
            "ok": self.ok,
        }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Soak:
    def __init__(self, target: str, images: list[bytes], seconds: float, workers: int) -> None:
        self.channel = grpc.insecure_channel(
            target, options=[("grpc.max_send_message_length", 80 << 20)]
        )
        self.stub = rpc.MatchServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.images = images
        self.seconds = seconds
        self.workers = workers
        self.report = SoakReport()
        self.lock = threading.Lock()

    def answer(self, code: str, started: float | None = None) -> None:
        with self.lock:
            self.report.answers[code] += 1
            if started is not None and code == "OK":
                self.report.latencies_ms.append((time.perf_counter() - started) * 1000)

    def unary(self, r: random.Random) -> None:
        n = r.choice([1, 1, 4, 16, 64])
        req = pb.MatchImagesRequest(images=[pb.Image(data=r.choice(self.images)) for _ in range(n)])
        timeout = r.choice([0.05, 2.0, 30.0])
        t0 = time.perf_counter()
        try:
            resp = self.stub.MatchImages(req, timeout=timeout)
            assert len(resp.results) == n
            self.answer("OK", t0)
        except grpc.RpcError as exc:
            self.answer(exc.code().name)

    def hashes(self, r: random.Random) -> None:
        req = pb.MatchHashesRequest(
            hashes=[
                pb.HashQuery(signal_type=pb.PDQ, value=r.randbytes(32))
                for _ in range(r.randint(1, 500))
            ]
        )
        t0 = time.perf_counter()
        try:
            self.stub.MatchHashes(req, timeout=30)
            self.answer("OK", t0)
        except grpc.RpcError as exc:
            self.answer(exc.code().name)

    def stream(self, r: random.Random, mode: str) -> None:
        n = r.randint(5, 60)

        def requests() -> Iterator[pb.MatchStreamRequest]:
            for k in range(n if mode == "full" else 10_000):
                yield pb.MatchStreamRequest(
                    image=pb.Image(content_id=str(k), data=r.choice(self.images))
                )

        call = self.stub.MatchStream(requests(), timeout=60)
        try:
            if mode == "full":
                got = sum(1 for _ in call)
                assert got == n
                self.answer("OK")
            elif mode == "vanish":
                for k, _ in enumerate(call):
                    if k >= 3:
                        break
                call.cancel()
                self.answer("CANCELLED")
            else:  # stalls: reads nothing, then goes away
                time.sleep(r.uniform(0.2, 1.0))
                call.cancel()
                self.answer("CANCELLED")
        except grpc.RpcError as exc:
            self.answer(exc.code().name)

    def worker(self, seed: int, until: float) -> None:
        r = random.Random(seed)
        while time.monotonic() < until:
            with self.lock:
                self.report.calls += 1
            before = sum(self.report.answers.values())
            kind = r.choices(["unary", "hashes", "full", "vanish", "stall"], [6, 2, 2, 1, 1])[0]
            try:
                if kind == "unary":
                    self.unary(r)
                elif kind == "hashes":
                    self.hashes(r)
                else:
                    self.stream(r, kind)
            except Exception as exc:  # a client-side surprise is a lost answer
                print(f"lost: {kind}: {exc!r}", file=sys.stderr)
            with self.lock:
                if sum(self.report.answers.values()) == before:
                    self.report.lost += 1

    def run(self, server_pid: int | None) -> SoakReport:
        until = time.monotonic() + self.seconds
        threads = [
            threading.Thread(target=self.worker, args=(k, until)) for k in range(self.workers)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            if server_pid is not None:
                self.report.rss_mb.append(_rss_mb(server_pid))
            time.sleep(1.0)
        for t in threads:
            t.join()
        self.report.seconds = time.perf_counter() - t0
        self.channel.close()
        return self.report


def sample_images() -> list[bytes]:
    from tests.helpers import encode, synthetic_rgb

    return [encode(synthetic_rgb(480, 640, seed=k), "JPEG", quality=85) for k in range(4)] + [
        b"junk"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--target", help="an already running server (else one is started)")
    args = parser.parse_args(argv)
    images = sample_images()
    if args.target:
        report = Soak(args.target, images, args.seconds, args.workers).run(None)
    else:
        from tests import server_harness

        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "soak.toml"
            config.write_text("[batch]\nmax_queue_items = 256\n")
            srv = server_harness.start(Path(tmp) / "data", "--config", str(config))
            try:
                report = Soak(srv.target, images, args.seconds, args.workers).run(srv.proc.pid)
            finally:
                srv.stop()
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
