"""Fuzz every RPC's messages against a real server: mutated and random request bytes, to
every unary and streaming method of every hashmatch.v1 service.

    python -m tools.fuzz_rpc --iterations 100000 --seed 1      # starts its own server

Every call must end with a status; none may be INTERNAL (an unexpected exception in
hashmatch's code) and the server must still answer its health check at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hashmatch.proto import admin_pb, bank_pb, pb, report_pb, video_pb

SERVICES = [pb, bank_pb, admin_pb, report_pb, video_pb]


@dataclass
class Method:
    path: str
    request: type[Any]
    client_stream: bool
    server_stream: bool


def methods() -> list[Method]:
    out = []
    for module in SERVICES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                out.append(
                    Method(
                        f"/{service.full_name}/{m.name}",
                        message_factory.GetMessageClass(m.input_type),
                        m.client_streaming,
                        m.server_streaming,
                    )
                )
    return out


def seed_message(cls: type[Any], r: random.Random) -> bytes:
    """A plausible request: string fields small names, bytes fields small blobs, numbers."""
    msg = cls()
    for f in msg.DESCRIPTOR.fields:
        if f.is_repeated or f.message_type is not None:
            continue
        if f.type == f.TYPE_STRING:
            setattr(msg, f.name, r.choice(["", "x", "ncmec", "acme:list", "Test", "a" * 300]))
        elif f.type == f.TYPE_BYTES:
            setattr(msg, f.name, r.randbytes(r.choice([0, 16, 32, 200])))
        elif f.type in (f.TYPE_INT32, f.TYPE_INT64):
            setattr(msg, f.name, r.choice([0, 1, -1, 31, 2**31 - 1]))
        elif f.type == f.TYPE_BOOL:
            setattr(msg, f.name, r.random() < 0.5)
        elif f.type == f.TYPE_ENUM:
            setattr(msg, f.name, r.choice([v.number for v in f.enum_type.values]))
    data: bytes = msg.SerializeToString()
    return data


def mutate(data: bytes, r: random.Random) -> bytes:
    kind = r.randrange(4)
    if kind == 0 or not data:
        return r.randbytes(r.randint(0, 64))
    b = bytearray(data)
    if kind == 1:
        for _ in range(r.randint(1, 4)):
            b[r.randrange(len(b))] = r.randrange(256)
    elif kind == 2:
        b = b[: r.randrange(len(b))]
    else:
        b += r.randbytes(r.randint(1, 16))
    return bytes(b)


@dataclass
class RpcFuzzReport:
    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    internal: list[str] = field(default_factory=list)
    alive: bool = True
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.alive and not self.internal

    def to_json(self) -> dict[str, object]:
        return {"calls": self.calls, "codes": dict(self.codes.most_common()),
                "internal": self.internal[:10], "server_alive": self.alive,
                "seconds": round(self.seconds, 1), "ok": self.ok}  # fmt: skip


def fuzz(target: str, iterations: int, seed: int) -> RpcFuzzReport:
    r = random.Random(seed)
    ms = methods()
    report = RpcFuzzReport()
    ident = lambda b: b  # noqa: E731 (raw bytes in and out)
    t0 = time.perf_counter()
    with grpc.insecure_channel(target) as ch:
        for _ in range(iterations):
            m = r.choice(ms)
            payloads = [
                mutate(seed_message(m.request, r), r)
                if r.random() < 0.8
                else seed_message(m.request, r)
                for _ in range(r.randint(1, 3) if m.client_stream else 1)
            ]
            code = "OK"
            try:
                if m.client_stream and m.server_stream:
                    call = ch.stream_stream(m.path, ident, ident)(iter(payloads), timeout=10)
                    list(call)
                elif m.client_stream:
                    ch.stream_unary(m.path, ident, ident)(iter(payloads), timeout=10)
                elif m.server_stream:
                    list(ch.unary_stream(m.path, ident, ident)(payloads[0], timeout=10))
                else:
                    ch.unary_unary(m.path, ident, ident)(payloads[0], timeout=10)
            except grpc.RpcError as exc:
                code = exc.code().name
                if exc.code() == grpc.StatusCode.INTERNAL:
                    report.internal.append(f"{m.path}: {exc.details()} <- {payloads[0][:48].hex()}")
            report.calls += 1
            report.codes[code] += 1
        try:
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            report.alive = health.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            report.alive = False
    report.seconds = time.perf_counter() - t0
    return report


def _started_server() -> Iterator[Any]:
    from tests import server_harness

    with tempfile.TemporaryDirectory() as tmp:
        srv = server_harness.start(Path(tmp) / "data")
        try:
            yield srv
        finally:
            srv.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", help="a running server (else one is started)")
    args = parser.parse_args(argv)
    if args.target:
        report = fuzz(args.target, args.iterations, args.seed)
    else:
        gen = _started_server()
        srv = next(gen)
        try:
            report = fuzz(srv.target, args.iterations, args.seed)
            report.alive = report.alive and srv.proc.poll() is None
        finally:
            gen.close()
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
