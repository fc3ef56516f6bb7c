"""Imported by the worker processes' fork server, and only there: the engine's kernels are
loaded once in it, so every worker forked from it starts warm (a cold worker spends
~0.8 s importing and loading kernels, a tenth of a 10,000-image scan on two cores)."""

import numpy as np

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.hashing.pools import worker_engine

_engine = worker_engine(EngineConfig(backend=BackendChoice.CPU))
_engine.backend.finish([_engine.backend.prepare(np.zeros((64, 64), np.uint8))], False)
