"""Triton kernels compiled once per patch shape, not once per video size.

By default Triton compiles a new variant of a kernel whenever an integer argument changes
between 1, a multiple of 16 and anything else, or a pointer's alignment changes. Every
pyramid level has other sizes, so a first run compiled dozens of variants: 95-147 s before
the first 360p-1080p variation on an H100. Our loads are gathers that gain nothing from those
specialisations, so every runtime argument is declared generic and only the constexprs (patch
shape, channels, flags) select a variant.
"""

from __future__ import annotations

import inspect

import triton


def generic_kernel(fn):
    """``triton.jit`` with no specialisation on the values or alignment of runtime arguments."""
    runtime = [name for name, parameter in inspect.signature(fn).parameters.items()
               if "constexpr" not in str(parameter.annotation)]
    return triton.jit(fn, do_not_specialize=runtime, do_not_specialize_on_alignment=runtime)
