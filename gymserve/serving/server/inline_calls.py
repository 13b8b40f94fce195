"""Which HTTP policy calls the event loop runs itself, and which it hands to the worker threads.

Handing a call to a worker thread and its answer back to the loop wakes two threads: 70-90 us
on 2 cores, more than a small policy's whole call (benchmarks/RESULTS.md, "The Open Inference
Protocol and the HTTP APIs against Act, a bare HTTP floor and Ray Serve"). A call that takes
less than that costs less run on the loop, which then waits for it as it waits for JSON
decoding. So the loop runs a call itself when one of the last `WINDOW` calls of its route and
policy took less than `INLINE_SECONDS` (the least of them: waiting for the GIL or a core
inflates some calls' durations under load, never all), its body is small (`INLINE_MAX_BODY`)
and the server does not batch (a batched call waits for others).
The first `WINDOW` calls of a route and policy go to the worker threads, and a policy that
turns slow (a new version, say) stalls the loop `WINDOW` times at most before its calls go
back to them.
"""

from __future__ import annotations

from collections import deque

INLINE_SECONDS = 0.0005  # calls faster than this cost less on the loop than handed off
INLINE_MAX_BODY = 16 * 1024  # bytes; a larger body may be a batch far slower than the usual call
WINDOW = 8  # recent calls of a route and policy whose least duration decides


class InlineCalls:
    """Learns each (route, policy) pair's call duration and says whether the loop may run the next.

    Used from the event loop's thread only; holds only pairs whose calls succeeded (served policies)."""

    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._seconds: dict[tuple[str, str], deque[float]] = {}

    def inline(self, key: tuple[str, str], body_bytes: float) -> bool:
        if not self._enabled or body_bytes > INLINE_MAX_BODY:
            return False
        recent = self._seconds.get(key)
        return recent is not None and len(recent) == WINDOW and min(recent) < INLINE_SECONDS

    def record(self, key: tuple[str, str], seconds: float) -> None:
        """A call of `key` succeeded in `seconds` (the handler's own, not its wait for a thread)."""
        recent = self._seconds.get(key)
        if recent is None:
            recent = self._seconds[key] = deque(maxlen=WINDOW)
        recent.append(seconds)
