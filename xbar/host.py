"""Host-memory allocator settings for runs on the CPU: :func:`tune_allocator`.

XLA's CPU backend allocates the temporary buffers of a compiled program at every call and
frees them at its end. With the GNU C library's default ``malloc``, a buffer above the mmap
threshold (128 kB at start, adapting up to 32 MB) is mapped fresh from the kernel and
unmapped when freed, and free memory above the trim threshold at the top of the heap is
handed back; every call then touches its large temporaries as new pages (one minor page
fault per 4 kB page). For a training step of a 784-256-10 spiking network (T = 25, batch
128) that is ~10^4 page faults per step, about as long as the step's arithmetic
(``benchmarks/RESULTS.md``). Raising the thresholds keeps freed memory in the process for
the next call: the same allocations are then served without faults. All threads share one
arena (``M_ARENA_MAX = 1``), so that memory freed by one of XLA's threads serves the next
call's allocations by another; call it before the first computation, as arenas that already
exist stay.

The setting is process-wide and opt-in (a library should not change its host's allocator
by itself); ``xbar demo`` and the benchmarks call it. The cost is memory: freed buffers stay
mapped (up to the program's peak temporaries, plus ``top_pad``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["tune_allocator"]

# mallopt parameter numbers of glibc's <malloc.h>
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
_INT_MAX = 2**31 - 1


def tune_allocator(
    *,
    mmap_threshold: int = _MMAP_THRESHOLD_MAX,
    trim_threshold: int = _INT_MAX,
    top_pad: int = 256 * 1024 * 1024,
) -> bool:
    """Keep freed host memory for reuse (module docstring); returns whether it was applied.

    Args:
        mmap_threshold: allocations at least this large [bytes] are mapped separately;
            an integer in ``[0, 32 MiB]`` (glibc's maximum, the default).
        trim_threshold: free memory at the top of the heap beyond this [bytes] is
            returned to the system; an integer in ``[0, 2**31 - 1]`` (default: the maximum,
            i.e. kept).
        top_pad: extra memory [bytes] requested whenever the heap grows, an integer in
            ``[0, 2**31 - 1]`` (default 256 MiB).

    Returns False (and changes nothing) where the C library is not glibc (e.g. macOS,
    Windows, musl); True when every setting was accepted.
    """
    for name, val, hi in (
        ("mmap_threshold", mmap_threshold, _MMAP_THRESHOLD_MAX),
        ("trim_threshold", trim_threshold, _INT_MAX),
        ("top_pad", top_pad, _INT_MAX),
    ):
        if not (isinstance(val, int) and not isinstance(val, bool) and 0 <= val <= hi):
            raise ValueError(f"{name} must be an integer in [0, {hi}] bytes, got {val!r}")
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    libc = ctypes.CDLL(path)
    if not hasattr(libc, "mallopt"):
        return False
    ok = True
    for param, val in (
        # one arena: memory freed by one of XLA's threads serves the next call's allocation
        # by another (per-thread arenas unmap their heaps when these empty)
        (_M_ARENA_MAX, 1),
        (_M_MMAP_THRESHOLD, mmap_threshold),
        (_M_TRIM_THRESHOLD, trim_threshold),
        (_M_TOP_PAD, top_pad),
    ):
        ok = bool(libc.mallopt(ctypes.c_int(param), ctypes.c_int(val))) and ok
    return ok
