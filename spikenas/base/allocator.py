"""Keep freed memory in the process on the CPU, so that large tensors do not fault in fresh pages.

Scoring and training allocate and free feature maps of tens to hundreds of MB per layer
(``[T*B, C, H, W]`` float32). glibc serves allocations above its mmap threshold with fresh
``mmap`` pages and returns them with ``munmap`` when freed, so every layer of every candidate
pays the kernel to map and zero its memory again: on the 2-core CPU, SNASNet-sized scoring spent
more system time than the convolutions took (``docs/benchmarks.md``). :func:`keep_freed_memory`
tells glibc (``mallopt``) to serve such blocks from its heap and to keep freed memory for reuse.
The process then holds on to its peak heap until it exits, which a command-line run does anyway.
Elsewhere than Linux with glibc it does nothing. ``spikenas search`` calls it at start-up unless
``SPIKENAS_SYSTEM_MALLOC=1`` (training, with its smaller batches, did not gain: 195 s against
184 s for ``bench/train_fmnist.py --quick``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

_done = False


def keep_freed_memory(mmap_threshold: int = 2**31 - 1, top_pad: int = 1 << 30) -> bool:
    """Serve blocks below ``mmap_threshold`` bytes from the heap, grow it ``top_pad`` bytes at a
    time and never trim it; True when glibc accepted all three settings (once per process)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    accepted = all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, mmap_threshold), (M_TOP_PAD, top_pad), (M_TRIM_THRESHOLD, -1)))  # -1: never trim
    _done = accepted
    return accepted


def tune_for_command() -> bool:
    """:func:`keep_freed_memory` unless ``SPIKENAS_SYSTEM_MALLOC`` is set to 1/true/yes."""
    if os.environ.get("SPIKENAS_SYSTEM_MALLOC", "").strip().lower() in ("1", "true", "yes"):
        return False
    return keep_freed_memory()
