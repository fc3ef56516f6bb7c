"""The hashing engine: items in, one Signature or ItemError out per item, in order."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from hashmatch.config import EngineConfig, PoolKind
from hashmatch.errors import ItemError
from hashmatch.hashing.backend import Backend, CpuBackend, select_backend
from hashmatch.hashing.decode.batch import BatchDecoder, select_decoder, takes
from hashmatch.hashing.decode.images import Header, decode, decoded_bytes, peek
from hashmatch.hashing.pools import process_pool, worker_engine
from hashmatch.hashing.reading import Item, read_item
from hashmatch.hashing.signature import PdqHash, Signature

Result = Signature | ItemError
_In = TypeVar("_In")
_Out = TypeVar("_Out")


@dataclass(frozen=True, slots=True)
class _Prepared:
    buffer: Any  # np.ndarray; a CuPy array when a GPU decoder left the pixels on the device
    md5: bytes
    sha256: bytes
    width: int
    height: int


def prepare_item(item: Item, config: EngineConfig, backend: Backend) -> _Prepared | ItemError:
    """Read, checksum, decode and (per backend) resample one item; never raises."""
    try:
        data = read_item(item, config.max_bytes)
        image = decode(data, config)
        return _prepared(data, image.pixels, image.width, image.height, backend)
    except Exception as exc:  # one bad item must never fail its batch
        return ItemError.from_exception(exc)


def _parts(
    peeked: list[tuple[bytes, Header] | ItemError], budget: int
) -> Iterator[list[tuple[bytes, Header] | ItemError]]:
    """Consecutive runs of items whose decoded size adds up to at most `budget`."""
    part: list[tuple[bytes, Header] | ItemError] = []
    used = 0
    for p in peeked:
        size = 0 if isinstance(p, ItemError) else decoded_bytes(p[1].width, p[1].height, p[1].mode)
        if part and used + size > budget:
            yield part
            part, used = [], 0
        part.append(p)
        used += size
    if part:
        yield part


def _peeked(item: Item, config: EngineConfig) -> tuple[bytes, Header] | ItemError:
    """An item's bytes and header (no pixel decoded), or its typed error; never raises."""
    try:
        data = read_item(item, config.max_bytes)
        return data, peek(data, config)
    except Exception as exc:
        return ItemError.from_exception(exc)


def _prepared(data: bytes, pixels: Any, width: int, height: int, backend: Backend) -> _Prepared:
    """What the hash stage needs of one decoded image: its resampled buffer and checksums."""
    return _Prepared(
        buffer=backend.prepare(pixels),
        md5=hashlib.md5(data).digest(),
        sha256=hashlib.sha256(data).digest(),
        width=width,
        height=height,
    )


def _prepare_in_process(item: Item, config: EngineConfig) -> _Prepared | ItemError:
    """prepare_item in a worker process, on that worker's engine (a CPU one: the pool
    is only used beside the CPU backend)."""
    return prepare_item(item, config, worker_engine(config).backend)


class Engine:
    """Batch-first PDQ + MD5 + SHA-256 hashing.

    `workers` > 1 spreads decode and resampling over a pool (threads by default: the
    decoders and kernels release the GIL). The backend is chosen once, here.
    """

    def __init__(self, config: EngineConfig | None = None, backend: Backend | None = None):
        self.config = config or EngineConfig()
        self.backend = backend or select_backend(self.config)
        self.decoder = select_decoder(self.config, self.backend)
        self._pool: Executor | None = None

    @property
    def decoder_name(self) -> str:
        """What decodes exact-mode images: "dali gpu:0", "nvimagecodec cpu", ... or "cpu"
        (the CPU path)."""
        if self.decoder is None:
            return "cpu"
        return f"{self.decoder.name} {self.decoder.device}"

    def hash_many(self, items: Iterable[Item], dihedral: bool | None = None) -> list[Result]:
        """One result per item, in order. dihedral: also the 8 rotation/flip hashes
        (None: as configured)."""
        dihedral = self.config.dihedral if dihedral is None else dihedral
        items = list(items)
        if not self.backend.keeps_pixels or len(items) <= 1:
            return self._hash_part(items, dihedral)
        # The backend holds a part's decoded pixels until it hashes them: parts bounded
        # by max_batch_decoded_bytes, sized from the headers (nothing decoded yet).
        peeked = self._thread_map(lambda it: _peeked(it, self.config), items)
        out: list[Result] = []
        for part in _parts(peeked, self.config.max_batch_decoded_bytes):
            readable = [p[0] for p in part if not isinstance(p, ItemError)]
            results = iter(self._hash_part(list(readable), dihedral))
            out += [p if isinstance(p, ItemError) else next(results) for p in part]
        return out

    def _hash_part(self, items: list[Item], dihedral: bool) -> list[Result]:
        prepared = self._prepare_all(items)
        good = [(k, p) for k, p in enumerate(prepared) if isinstance(p, _Prepared)]
        hashes, quality = self.backend.finish([p.buffer for _, p in good], dihedral)
        signed = {
            k: self._signature(p, hashes[row], int(quality[row]), dihedral)
            for row, (k, p) in enumerate(good)
        }
        return [p if isinstance(p, ItemError) else signed[k] for k, p in enumerate(prepared)]

    def hash_one(self, item: Item) -> Result:
        return self.hash_many([item])[0]

    def _signature(
        self, p: _Prepared, packed: np.ndarray, quality: int, dihedral: bool
    ) -> Signature:
        if dihedral:
            variants = tuple(PdqHash(bytes(v)) for v in packed)
            return Signature(variants[0], quality, p.md5, p.sha256, p.width, p.height, variants)
        return Signature(PdqHash(bytes(packed)), quality, p.md5, p.sha256, p.width, p.height)

    def _prepare_all(self, items: Sequence[Item]) -> list[_Prepared | ItemError]:
        if self.decoder is not None:
            return self._prepare_decoded(items, self.decoder)
        if self.config.workers == 1 or len(items) <= 1:
            return [prepare_item(it, self.config, self.backend) for it in items]
        pool = self._executor()
        if isinstance(pool, ProcessPoolExecutor):
            return list(pool.map(_prepare_in_process, items, [self.config] * len(items)))
        return self._thread_map(lambda it: prepare_item(it, self.config, self.backend), items)

    def _prepare_decoded(
        self, items: Sequence[Item], decoder: BatchDecoder
    ) -> list[_Prepared | ItemError]:
        """Headers checked first (no pixel decoded), what the decoder reproduces exactly
        goes to it as one batch, the rest (and what it failed) to the CPU path. Reading,
        headers and checksums run on the worker threads: at GPU rates they are the host's
        main work."""
        peeked = self._thread_map(lambda it: _peeked(it, self.config), items)
        batch = [
            (k, p[0]) for k, p in enumerate(peeked) if not isinstance(p, ItemError) and takes(p[1])
        ]
        decoded = decoder.decode_many([data for _, data in batch])
        pixels = {k: px for (k, _), px in zip(batch, decoded, strict=True)}

        def finish(k: int) -> _Prepared | ItemError:
            p = peeked[k]
            if isinstance(p, ItemError):
                return p
            data, header = p
            if pixels.get(k) is None:  # not the decoder's, or it failed: the CPU path
                return prepare_item(data, self.config, self.backend)
            return _prepared(data, pixels[k], header.width, header.height, self.backend)

        return self._thread_map(finish, range(len(items)))

    def _thread_map(self, fn: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out]:
        """fn over items, in order, on the worker threads (in this thread with one worker
        or a process pool)."""
        pool = None if self.config.workers == 1 or len(items) <= 1 else self._executor()
        if not isinstance(pool, ThreadPoolExecutor):
            return [fn(it) for it in items]
        # A few contiguous chunks per worker, not a future per item: the pool's per-task
        # bookkeeping runs under the GIL.
        size = max(1, len(items) // (4 * self.config.workers))
        chunks = [items[lo : lo + size] for lo in range(0, len(items), size)]
        done = pool.map(lambda chunk: [fn(it) for it in chunk], chunks)
        return [out for chunk in done for out in chunk]

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.config.pool is PoolKind.PROCESS and isinstance(self.backend, CpuBackend):
                self._pool = process_pool(self.config.workers)
            else:
                self._pool = ThreadPoolExecutor(self.config.workers, "hashmatch-engine")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hash_many(items: Iterable[Item], config: EngineConfig | None = None) -> list[Result]:
    """One-shot convenience: hash a batch with a fresh engine."""
    with Engine(config) as engine:
        return engine.hash_many(items)
