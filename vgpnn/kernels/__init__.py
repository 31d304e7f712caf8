"""Compiled kernels: numba on the CPU, Triton on CUDA."""
