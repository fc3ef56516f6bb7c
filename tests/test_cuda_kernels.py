"""The Numba CUDA kernels under the CUDA simulator (no GPU needed) equal the CPU kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seed", [0])
def test_cuda_kernels_match_cpu_under_simulator(seed: int) -> None:
    # The simulator must be chosen before numba.cuda is first imported: a fresh process.
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cudasim_parity", str(seed)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cudasim parity ok" in proc.stdout


def test_gpu_index_range_search_under_simulator() -> None:
    """The GPU index's tiled kernels: the same hits as a brute force, adds and removes."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cudasim_search", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cudasim search ok" in proc.stdout


def test_matcher_with_the_gpu_index_answers_as_with_mih_under_simulator() -> None:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cudasim_matcher"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cudasim matcher ok" in proc.stdout
