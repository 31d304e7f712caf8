"""numba's ``njit`` with its on-disk cache where one can be kept, and without it where not.

numba looks for a cache folder when a ``cache=True`` function is defined, at import: beside the
source (``__pycache__``), then in the user's cache folder (``$NUMBA_CACHE_DIR``, or
``$XDG_CACHE_HOME``/``~/.cache``). When none is writable (a package installed read-only and a
read-only or missing HOME: containers, CI sandboxes, service accounts) it raises, and importing
a kernel module would fail. The cache only saves the compile time of each new process (a few seconds),
so then the kernels are compiled without it. A shared temporary folder is not used instead:
the cache holds pickled code, which another user of the machine could plant there.
"""

from __future__ import annotations

from numba import njit


def cached_njit(**options):
    """``numba.njit(cache=True, **options)``, falling back to no cache when numba finds no
    folder it can write its cache to."""
    def decorate(function):
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError as error:
            if "cannot cache" not in str(error):
                raise
            return njit(**options)(function)
    return decorate
