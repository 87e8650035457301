"""Give large request buffers back to the OS once a request is done.

glibc serves allocations above ``M_MMAP_THRESHOLD`` with their own ``mmap``
and unmaps them on ``free``; but after such a block is freed it raises the
threshold (up to 32 MiB on 64-bit), so later multi-megabyte request, tensor
and response buffers come from the heap arenas, which are fragmented by the
many threads and rarely shrink. Measured with ``benchmarks/soak.py``: a burst
of 1500x1500 images and 100 MB bodies left the server about 300 MB larger for
good. Setting the threshold explicitly turns the dynamic adjustment off, so
every buffer of 256 KiB or more is unmapped when freed, and RSS returns to
its baseline. Python's small-object allocator is not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MMAP_THRESHOLD", "release_large_buffers_to_os"]

_log = logging.getLogger("gradcam_serving.server")
_M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD = 256 * 1024


def release_large_buffers_to_os(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process; False (and nothing changed) without glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    if not done:
        _log.warning("mallopt(M_MMAP_THRESHOLD) failed; large buffers may stay in the heap after requests")
    return done
