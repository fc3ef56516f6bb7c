"""The hash math: banded resampling (CPU Numba / CUDA kernels) and PDQ over an array namespace."""
