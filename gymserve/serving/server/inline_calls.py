"""Which HTTP policy calls the event loop runs itself, and which it hands to the worker threads.

Handing a call to a worker thread and its answer back to the loop wakes two threads: 70-90 us
on 2 cores, more than a small policy's whole call (benchmarks/RESULTS.md, "The Open Inference
Protocol and the HTTP APIs against Act, a bare HTTP floor and Ray Serve"). A call that takes
less than that costs less run on the loop, which then waits for it as it waits for JSON
decoding. So the loop runs a call itself when the last `WINDOW` calls of its route, policy and
version took a median under `INLINE_SECONDS` and none took `STALL_SECONDS` or more, its body is
small (`INLINE_MAX_BODY`) and the server does not batch (a batched call waits for others).
The first `WINDOW` calls of a key go to the worker threads. A call of `STALL_SECONDS` or more
(a policy that turned slow, a core taken away) sends the next `WINDOW` calls of its key back to
them, so the loop waits that long at most once in `WINDOW` calls of a key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

INLINE_SECONDS = 0.0005  # calls faster than this cost less on the loop than handed off
STALL_SECONDS = 0.005  # a call this slow on the loop delays every other request noticeably
INLINE_MAX_BODY = 16 * 1024  # bytes; a larger body may be a batch far slower than the usual call
WINDOW = 8  # recent calls of a key that decide
MAX_KEYS = 1024  # keys remembered; the first remembered is forgotten first (its calls go to the threads)


class InlineCalls:
    """Learns each key's call durations and says whether the loop may run its next call.

    Used from the event loop's thread only; holds only keys whose calls succeeded (served policies).
    The decision is made as a call is recorded, after its answer went out, so asking costs a lookup."""

    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._seconds: dict[Hashable, deque[float]] = {}
        self._fast: set[Hashable] = set()  # keys whose next call the loop runs

    def inline(self, key: Hashable, body_bytes: int) -> bool:
        return body_bytes <= INLINE_MAX_BODY and key in self._fast

    def record(self, key: Hashable, seconds: float) -> None:
        """A call of `key` succeeded in `seconds` (the handler's own, not its wait for a thread)."""
        if not self._enabled:
            return
        recent = self._seconds.get(key)
        if recent is None:
            if len(self._seconds) >= MAX_KEYS:
                forgotten = next(iter(self._seconds))
                del self._seconds[forgotten]
                self._fast.discard(forgotten)
            recent = self._seconds[key] = deque(maxlen=WINDOW)
        recent.append(seconds)
        if len(recent) < WINDOW:
            return
        ordered = sorted(recent)
        median = (ordered[(WINDOW - 1) // 2] + ordered[WINDOW // 2]) / 2
        if ordered[-1] < STALL_SECONDS and median < INLINE_SECONDS:
            self._fast.add(key)
        else:
            self._fast.discard(key)
