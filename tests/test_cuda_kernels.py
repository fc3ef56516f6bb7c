"""The Numba CUDA kernels under the CUDA simulator (no GPU needed): each check is a script
in its own process, because the simulator must be chosen before numba.cuda is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _under_simulator(module: str, *args: str) -> str:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_cuda_kernels_match_cpu_under_simulator() -> None:
    """The resampling/luma kernels and the GPU backend equal the CPU engine bit for bit;
    out-of-memory batches are split and still give the same hashes."""
    assert "cudasim parity ok" in _under_simulator("tests.cudasim_parity", "0")


def test_gpu_index_range_search_under_simulator() -> None:
    """The GPU index's tiled kernel: the same hits as a brute force, adds and removes."""
    assert "cudasim search ok" in _under_simulator("tests.cudasim_search", "0")


def test_matcher_with_the_gpu_index_answers_as_with_mih_under_simulator() -> None:
    assert "cudasim matcher ok" in _under_simulator("tests.cudasim_matcher")
