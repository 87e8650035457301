"""Give memory from large requests back to the OS, in the server process only.

Two glibc levers; ``benchmarks/soak.py`` measures what they do (a burst of
malformed and very large requests, RSS at rest before and after), and the
docs/measured.md gives its numbers:

* **A fixed mmap threshold.** glibc serves allocations above
  ``M_MMAP_THRESHOLD`` with their own ``mmap`` and unmaps them on ``free``; but
  after such a block is freed it raises the threshold (up to 32 MiB), so later
  multi-megabyte request, tensor and response buffers come from the heap
  arenas, which many threads fragment and which rarely shrink. A fixed
  threshold turns that adjustment off. 4 MiB rather than glibc's 128 KiB
  start: below it sit the many smaller activations TensorFlow allocates and
  frees on every run, and mapping those anew each time (page faults, zeroed
  pages) costs batched throughput; at 4 MiB it is on par with glibc's default.
* **``malloc_trim`` when idle.** What the threshold leaves, freed chunks in the
  middle of the arenas, goes back with ``malloc_trim(0)``; :class:`IdleTrimmer`
  calls it once the server has gone quiet after requests, never under steady
  load or while a request runs.

Python's small-object allocator is not affected. Without glibc both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

__all__ = ["MMAP_THRESHOLD", "IdleTrimmer", "release_large_buffers_to_os", "return_free_heap_to_os"]

_log = logging.getLogger("gradcam_serving.server")
_M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD = 4 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def release_large_buffers_to_os(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process; False (and nothing changed) without glibc."""
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    if not done:
        _log.warning("mallopt(M_MMAP_THRESHOLD) failed; large buffers may stay in the heap after requests")
    return done


def return_free_heap_to_os() -> bool:
    """``malloc_trim(0)``: True if glibc gave pages back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class IdleTrimmer:
    """Trim the heap once requests came and went: nothing in flight and nothing new since the last tick.

    Args:
        activity: (requests started, requests finished) so far; ``Metrics.activity`` in the server.
        trim: what to call when the server went idle; :func:`return_free_heap_to_os` by default.

    Ticking every half second trims at most once a second, and only in a gap between requests:
    never while one runs (``malloc_trim`` locks each arena in turn and would hand back pages the
    running request is about to reuse), and never under steady load.
    """

    def __init__(
        self, activity: Callable[[], tuple[int, int]], trim: Callable[[], object] = return_free_heap_to_os
    ) -> None:
        self._activity = activity
        self._trim = trim
        self._seen = activity()
        self._dirty = False

    def tick(self) -> bool:
        """Call periodically; True when it trimmed."""
        seen = self._activity()
        if seen != self._seen:
            self._seen, self._dirty = seen, True
            return False
        started, finished = seen
        if not self._dirty or started > finished:
            return False
        self._dirty = False
        self._trim()
        return True
