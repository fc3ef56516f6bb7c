"""Typed configuration, built once at start-up and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hashmatch.errors import ConfigError


class HashMode(StrEnum):
    """Which PDQ the engine computes.

    exact: pdqhash on Pillow-decoded RGB at full resolution (python-threatexchange, HMA);
           JPEG luma is read straight from the Y plane (within re-encoding noise).
    cpp:   Meta's C++ pdq-photo-hasher: images over 512 px shrunk to 512x512 by nearest
           neighbour, then hashed; bit-exact with that tool.
    fast:  JPEG decoded at a reduced scale in the DCT domain; NOT reference-compatible,
           see bench/RESULTS.md for its measured distance.
    """

    EXACT = "exact"
    CPP = "cpp"
    FAST = "fast"


class BackendChoice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    GPU = "gpu"


class PoolKind(StrEnum):
    THREAD = "thread"
    PROCESS = "process"


@dataclass(frozen=True)
class EngineConfig:
    mode: HashMode = HashMode.EXACT
    dihedral: bool = False
    workers: int = 1
    pool: PoolKind = PoolKind.THREAD
    backend: BackendChoice = BackendChoice.AUTO
    # Decompression-bomb guard: checked from the header, before any pixel is decoded.
    max_pixels: int = 100_000_000
    max_bytes: int = 64 * 1024 * 1024
    # The reference hashes nothing under 5 px on a side (it returns a zero hash).
    min_dimension: int = 5
    # fast mode: smallest side kept by the DCT-domain downscale.
    fast_min_side: int = 256

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.max_pixels < 1 or self.max_bytes < 1:
            raise ConfigError("max_pixels and max_bytes must be positive")
        if self.min_dimension < 1:
            raise ConfigError(f"min_dimension must be >= 1, got {self.min_dimension}")
        if self.fast_min_side < 64:
            raise ConfigError(f"fast_min_side must be >= 64, got {self.fast_min_side}")
