"""Runs a scan: list -> shards -> hash (engine, all workers) -> match -> Parquet, resumable.

Two stages overlap: shards are hashed (in this thread with one worker; by a pool of
worker processes, a shard each, with more) while a writer thread matches and writes the
finished ones; at most two shards wait for the writer and 2 x workers are in flight, and
the listing streams, so memory stays bounded whatever the size of the tree.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from hashmatch.config import EngineConfig, VideoConfig
from hashmatch.hashing.backend import CpuBackend, select_backend
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.pools import process_pool
from hashmatch.hashing.signature import Signature
from hashmatch.matching.model import MatchOptions, image_queries, merge_results
from hashmatch.matching.protocol import Matcher
from hashmatch.scan.checkpoint import Manifest
from hashmatch.scan.output import ScanRow, to_table, write_atomic
from hashmatch.scan.sources import SourceItem, iter_source
from hashmatch.scan.worker import hash_shard, hash_shard_task
from hashmatch.video.compare import VideoMatchOptions
from hashmatch.video.features import VideoHash
from hashmatch.video.matching import VideoMatcher


@dataclass(frozen=True)
class ScanConfig:
    source: str
    out: Path
    engine: EngineConfig = field(default_factory=EngineConfig)
    shard_size: int = 256
    hash_only: bool = False
    options: MatchOptions = field(default_factory=MatchOptions)

    def params(self) -> dict[str, Any]:
        """What must not change between a scan and its resumption."""
        return {
            "source": self.source if "://" in self.source else os.path.abspath(self.source),
            "shard_size": self.shard_size,
            "hash_only": self.hash_only,
            "mode": self.engine.mode.value,
            "banks": list(self.options.banks),
            "max_distance": self.options.max_distance,
            "dihedral": self.options.dihedral,
        }


@dataclass
class ScanSummary:
    files: int = 0
    bytes: int = 0
    hashed: int = 0
    matched: int = 0
    skipped: int = 0  # already done in an earlier run
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.hashed / self.seconds if self.seconds else 0.0

    def add(self, rows: Sequence[ScanRow]) -> None:
        for r in rows:
            self.files += 1
            self.bytes += max(r.size, 0)
            if r.error_code:
                self.errors[r.error_code] += 1
            else:
                self.hashed += 1
            self.matched += r.is_match

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = dict(self.errors)
        out["images_per_s"] = round(self.rate, 1)
        return out


class Progress:
    """tqdm on a terminal; a quiet log line every `every_s` seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last = time.monotonic()
        self._bar: Any = None
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(unit="img", file=self.stream, dynamic_ncols=True)

    def update(self, summary: ScanSummary, n: int) -> None:
        errors = sum(summary.errors.values())
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(matches=summary.matched, errors=errors)
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.stream.write(
                f"scan: {summary.files} files, {summary.matched} matches, {errors} errors, "
                f"{summary.rate:.0f} img/s\n"
            )
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def shards(items: Iterable[SourceItem], size: int) -> Iterator[tuple[int, list[SourceItem]]]:
    it = iter(items)
    k = 0
    while chunk := list(islice(it, size)):
        yield k, chunk
        k += 1


_VIDEO_MATCH_OPTIONS = VideoMatchOptions(
    min_quality=VideoConfig.min_quality,
    query_match_percent=VideoConfig.query_match_percent,
    target_match_percent=VideoConfig.target_match_percent,
)


def match_video_rows(rows: list[ScanRow], videos: VideoMatcher, options: MatchOptions) -> None:
    """Video rows matched from their stored vPDQ (no video is read again)."""
    vpdq_options = _VIDEO_MATCH_OPTIONS
    for row in rows:
        if row.error_code is not None or row.vpdq is None:
            continue
        found = videos.match(
            VideoHash.from_bytes(row.vpdq), vpdq_options, None, options.banks, options.max_distance
        )
        row.is_match = bool(found)
        row.video_matches = [
            {
                "bank": m.bank,
                "video_id": m.video_id,
                "label": m.label,
                "query_match_percent": m.comparison.query_match_percent,
                "target_match_percent": m.comparison.target_match_percent,
                "query_ranges": [r.to_json() for r in m.comparison.query_ranges],
                "target_ranges": [r.to_json() for r in m.comparison.target_ranges],
            }
            for m in found
        ]


def signature_of(row: ScanRow) -> Signature:
    from hashmatch.hashing.signature import PdqHash

    assert row.pdq is not None and row.md5 and row.sha256  # callers pass hashed rows only
    return Signature(
        PdqHash.from_hex(row.pdq),
        row.quality or 0,
        bytes.fromhex(row.md5),
        bytes.fromhex(row.sha256),
        row.width or 0,
        row.height or 0,
    )


def match_rows(rows: list[ScanRow], matcher: Matcher, options: MatchOptions) -> None:
    """Fill matches in place, from the hashes in the rows (no image is read again)."""
    hashed = [r for r in rows if r.error_code is None and r.pdq]
    per_row = [image_queries(signature_of(r), dihedral=False) for r in hashed]
    flat = [q for qs in per_row for q in qs]
    if not flat:
        return
    found = matcher.match(flat, None, options.banks, options.max_distance)
    pos = 0
    for row, qs in zip(hashed, per_row, strict=True):
        merged = merge_results(found[pos : pos + len(qs)])
        pos += len(qs)
        row.is_match = merged.is_match
        row.matches = [
            {
                "bank": m.bank,
                "entry_id": m.entry_id,
                "signal_type": m.signal_type.value,
                "distance": m.distance,
                "label": m.label,
                "variant": m.dihedral,
                "suppressed": m.suppressed_by is not None,
            }
            for m in merged.matches
        ]


def local_hashed(
    pending: Iterator[tuple[int, list[SourceItem]]], config: EngineConfig
) -> Iterator[tuple[int, list[ScanRow]]]:
    backend = select_backend(config)
    if config.workers > 1 and isinstance(backend, CpuBackend):
        yield from pooled_hashed(pending, config)  # the workers make their own engines
        return
    with Engine(config, backend) as engine:
        for index, items in pending:
            yield index, hash_shard(engine, items)


def pooled_hashed(
    pending: Iterator[tuple[int, list[SourceItem]]], config: EngineConfig
) -> Iterator[tuple[int, list[ScanRow]]]:
    """Shards hashed by `workers` processes, a one-thread engine each, yielded as they
    finish. Processes, not threads: at ~1 ms per 640x480 image the per-item Python work
    of hashing, matching and writing all under one GIL is what capped scaling."""
    worker_config = replace(config, workers=1)
    in_flight: dict[Future[list[ScanRow]], int] = {}
    with process_pool(config.workers) as pool:
        for index, items in pending:
            in_flight[pool.submit(hash_shard_task, worker_config, items)] = index
            while len(in_flight) >= 2 * config.workers:
                yield from _pool_collect(in_flight)
        while in_flight:
            yield from _pool_collect(in_flight)


def _pool_collect(
    in_flight: dict[Future[list[ScanRow]], int],
) -> Iterator[tuple[int, list[ScanRow]]]:
    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
    for future in done:
        yield in_flight.pop(future), future.result()


def ray_hashed(
    pending: Iterator[tuple[int, list[SourceItem]]], config: EngineConfig
) -> Iterator[tuple[int, list[ScanRow]]]:
    """Shards hashed as Ray tasks (a local Ray, or the cluster `ray.init` finds), at most
    two per CPU in flight; yielded as they finish. Paths must be readable by the workers
    (a shared file system) or be URIs."""
    import ray

    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    task = ray.remote(hash_shard_task)
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    in_flight: dict[Any, int] = {}
    worker_config = replace(config, workers=1)  # Ray spreads shards; one thread each
    for index, items in pending:
        in_flight[task.remote(worker_config, items)] = index
        while len(in_flight) >= window:
            yield from _ray_collect(ray, in_flight)
    while in_flight:
        yield from _ray_collect(ray, in_flight)


def _ray_collect(ray: Any, in_flight: dict[Any, int]) -> Iterator[tuple[int, list[ScanRow]]]:
    ready, _ = ray.wait(list(in_flight), num_returns=1)
    for ref in ready:
        yield in_flight.pop(ref), ray.get(ref)


def run_scan(
    config: ScanConfig,
    matcher: Matcher | None,
    progress: Progress | None = None,
    restart: bool = False,
    use_ray: bool = False,
    videos: VideoMatcher | None = None,
) -> ScanSummary:
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    if restart:
        for stale in [*out.glob("part-*.parquet"), out / "_manifest.json"]:
            stale.unlink(missing_ok=True)
    manifest = Manifest.load_or_new(out, config.params())
    summary = ScanSummary()
    progress = progress or Progress(every_s=10.0)
    done: queue.Queue[tuple[int, list[ScanRow]] | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []
    t0 = time.perf_counter()

    def writer() -> None:
        try:
            while (job := done.get()) is not None:
                index, rows = job
                if matcher is not None and not config.hash_only:
                    match_rows(rows, matcher, config.options)
                if videos is not None and not config.hash_only:
                    match_video_rows(rows, videos, config.options)
                write_atomic(to_table(rows), out / f"part-{index:06d}.parquet")
                manifest.complete(
                    out, index, {"first": rows[0].path, "last": rows[-1].path, "count": len(rows)}
                )
                summary.add(rows)
                summary.seconds = time.perf_counter() - t0
                progress.update(summary, len(rows))
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)
            while done.get() is not None:
                pass

    def pending() -> Iterator[tuple[int, list[SourceItem]]]:
        for index, items in shards(iter_source(config.source), config.shard_size):
            if failure:
                return
            if manifest.check_shard(index, items[0].path, items[-1].path, len(items)):
                summary.skipped += len(items)
                continue
            yield index, items

    thread = threading.Thread(target=writer, name="hashmatch-scan-writer")
    thread.start()
    try:
        hashed = (
            ray_hashed(pending(), config.engine)
            if use_ray
            else local_hashed(pending(), config.engine)
        )
        for job in hashed:
            done.put(job)
    finally:
        done.put(None)
        thread.join()
        progress.close()
    if failure:
        raise failure[0]
    summary.seconds = time.perf_counter() - t0
    return summary
