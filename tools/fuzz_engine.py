"""Fuzz the decode + hash path with mutated images: no crash, no hang, no memory growth.

    python -m tools.fuzz_engine --iterations 100000 --seed 1

Seeds are small valid JPEG/PNG/GIF/WebP/TIFF/BMP files; each input is one of them mutated
(truncated, bytes flipped, header sizes lied about, chunks spliced or zeroed, bomb sizes).
Every input must come back as a Signature or a typed ItemError other than INTERNAL, within
--time-limit seconds; resident memory is sampled to catch leaks. Exit 1 on any finding.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.errors import ErrorCode, ItemError
from hashmatch.hashing.engine import Engine


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([(x * 4) % 256, (y * 5) % 256, (x * y) % 256], axis=-1).astype(np.uint8)
    rgb = np.clip(rgb + rng.integers(0, 20, rgb.shape), 0, 255).astype(np.uint8)
    out = {}
    for fmt, opts in [("JPEG", {"quality": 80}), ("PNG", {}), ("GIF", {}), ("WEBP", {}),
                      ("TIFF", {}), ("BMP", {}), ("JPEG", {"progressive": True})]:  # fmt: skip
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, **opts)
        out[f"{fmt}{'-prog' if opts.get('progressive') else ''}"] = buf.getvalue()
    return out


Mutator = Callable[[bytearray, random.Random], bytearray]


def truncate(d: bytearray, r: random.Random) -> bytearray:
    return d[: r.randrange(0, len(d))]


def flip(d: bytearray, r: random.Random) -> bytearray:
    for _ in range(r.randint(1, 16)):
        d[r.randrange(len(d))] = r.randrange(256)
    return d


def header_lie(d: bytearray, r: random.Random) -> bytearray:
    """Overwrite a size field with a huge, zero or random value (bombs, divisions by zero)."""
    value = r.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, r.randrange(1 << 32)])
    if d[:8] == b"\x89PNG\r\n\x1a\n":
        pos = r.choice([16, 20])
        d[pos : pos + 4] = struct.pack(">I", value)
    elif d[:3] == b"GIF":
        pos = r.choice([6, 8])
        d[pos : pos + 2] = struct.pack("<H", value & 0xFFFF)
    elif d[:2] == b"BM":
        pos = r.choice([18, 22])
        d[pos : pos + 4] = struct.pack("<I", value)
    elif d[:3] == b"\xff\xd8\xff" and (sof := d.find(b"\xff\xc0")) > 0:
        pos = sof + r.choice([5, 7])
        d[pos : pos + 2] = struct.pack(">H", value & 0xFFFF)
    else:
        pos = r.randrange(max(len(d) - 4, 1))
        d[pos : pos + 4] = struct.pack("<I", value)
    return d


def splice(d: bytearray, r: random.Random) -> bytearray:
    a, b = sorted(r.randrange(len(d)) for _ in range(2))
    return d[:a] + d[a:b] * r.randint(0, 3) + d[b:]


def zero_fill(d: bytearray, r: random.Random) -> bytearray:
    a = r.randrange(len(d))
    n = r.randint(1, 256)
    d[a : a + n] = bytes(min(n, len(d) - a))
    return d


def random_bytes(d: bytearray, r: random.Random) -> bytearray:
    return (
        bytearray(r.randbytes(r.randint(0, 512))) if r.random() < 0.5 else d[:12] + r.randbytes(64)
    )


MUTATORS: list[Mutator] = [truncate, flip, header_lie, splice, zero_fill, random_bytes]


@dataclass
class FuzzReport:
    iterations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, object]] = field(default_factory=list)
    slowest_s: float = 0.0
    seconds: float = 0.0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings and self.rss_end_mb - self.rss_start_mb < 200

    def to_json(self) -> dict[str, object]:
        return {
            "iterations": self.iterations,
            "outcomes": dict(self.outcomes.most_common()),
            "findings": self.findings[:20],
            "slowest_item_s": round(self.slowest_s, 3),
            "seconds": round(self.seconds, 1),
            "inputs_per_s": round(self.iterations / self.seconds, 1) if self.seconds else 0,
            "max_rss_mb": [round(self.rss_start_mb, 1), round(self.rss_end_mb, 1)],
            "ok": self.ok,
        }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz(iterations: int, seed: int, time_limit: float, batch: int = 64) -> FuzzReport:
    r = random.Random(seed)
    engine = Engine(EngineConfig(backend=BackendChoice.CPU, max_pixels=20_000_000))
    base = list(seeds().items())
    report = FuzzReport()
    engine.hash_many([d for _, d in base])  # warm-up (JIT) before memory is measured
    report.rss_start_mb = _rss_mb()
    t0 = time.perf_counter()
    while report.iterations < iterations:
        inputs = []
        for _ in range(min(batch, iterations - report.iterations)):
            name, data = r.choice(base)
            mutated = bytearray(data)
            for mutate in r.choices(MUTATORS, k=r.randint(1, 3)):
                mutated = mutate(mutated, r) if mutated else mutated
            inputs.append((name, bytes(mutated)))
        start = time.perf_counter()
        results = engine.hash_many([d for _, d in inputs])
        took = (time.perf_counter() - start) / max(len(inputs), 1)
        report.slowest_s = max(report.slowest_s, took)
        for (name, data), result in zip(inputs, results, strict=True):
            code = result.code.value if isinstance(result, ItemError) else "OK"
            report.outcomes[code] += 1
            if isinstance(result, ItemError) and result.code is ErrorCode.INTERNAL:
                report.findings.append(
                    {"seed": name, "input_hex": data[:64].hex(), "error": result.message}
                )
        if took > time_limit:
            report.findings.append(
                {"batch_seconds_per_item": took, "seeds": [n for n, _ in inputs]}
            )
        report.iterations += len(inputs)
    report.seconds = time.perf_counter() - t0
    report.rss_end_mb = _rss_mb()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per item")
    args = parser.parse_args(argv)
    report = fuzz(args.iterations, args.seed, args.time_limit)
    print(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
