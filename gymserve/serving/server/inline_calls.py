"""Which HTTP policy calls the event loop runs itself, and which it hands to the worker threads.

Handing a call to a worker thread and its answer back to the loop wakes two threads: about
90 us on 2 cores, twice a small policy's whole call (benchmarks/RESULTS.md, "HTTP calls against
a bare floor"). A call that takes less than that costs less run on the loop, which then waits
for it as it waits for JSON decoding. So the loop runs a call itself when the calls of its route
and policy have been fast (an average under `INLINE_SECONDS` of the CPU time of the handler's
thread, which waiting for the GIL or a core does not inflate under load), its body is small
(`INLINE_MAX_BODY`) and the server does not batch (a batched call waits for others). The first
calls of a route and policy go to the worker threads; a call the loop ran that took longer
than `SLOW_SECONDS` sends every later call of its route and policy to them: a policy that
turns slow (a new version, say, or one that waits on something) stalls the loop once.
"""

from __future__ import annotations

INLINE_SECONDS = 0.0005  # calls faster than this on average cost less on the loop than handed off
SLOW_SECONDS = 10 * INLINE_SECONDS  # one call the loop ran this slowly, and the pair is never run there again
INLINE_MAX_BODY = 16 * 1024  # bytes; a larger body may be a batch far slower than the average call
_WEIGHT = 0.1  # of the newest duration in the average
_FIRST_CALLS = 3  # handed off whatever their durations, to learn them


class InlineCalls:
    """Learns each (route, policy) pair's call duration and says whether the loop may run the next.

    Used from the event loop's thread only; holds only pairs whose calls succeeded (served policies)."""

    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._seconds: dict[tuple[str, str], float] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self._stalled: set[tuple[str, str]] = set()

    def inline(self, key: tuple[str, str], body_bytes: float) -> bool:
        return (
            self._enabled
            and body_bytes <= INLINE_MAX_BODY
            and self._calls.get(key, 0) >= _FIRST_CALLS
            and self._seconds[key] < INLINE_SECONDS
            and key not in self._stalled
        )

    def record(self, key: tuple[str, str], seconds: float) -> None:
        """A call of `key` succeeded using `seconds` of its thread's CPU (or of the loop's time)."""
        average = self._seconds.get(key)
        self._seconds[key] = seconds if average is None else average + _WEIGHT * (seconds - average)
        self._calls[key] = self._calls.get(key, 0) + 1

    def record_inline(self, key: tuple[str, str], seconds: float) -> None:
        """A call of `key` the loop ran succeeded in `seconds`."""
        if seconds >= SLOW_SECONDS:
            self._stalled.add(key)
        self.record(key, seconds)
