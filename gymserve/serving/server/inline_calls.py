"""Which HTTP policy calls the event loop runs itself, and which it hands to the worker threads.

Handing a call to a worker thread and its answer back to the loop wakes two threads: about
90 us on 2 cores, twice a small policy's whole call (benchmarks/RESULTS.md, "HTTP calls against
a bare floor"). A call that takes less than that costs less run on the loop, which then waits
for it as it waits for JSON decoding. So the loop runs a call itself when the calls of its route
and policy have recently been fast (an average of the handler's own durations under
`INLINE_SECONDS`), its body is small (`INLINE_MAX_BODY`) and the server does not batch (a
batched call waits for others). The first calls of a route and policy go to the worker
threads, and so do all calls after one slower than `SLOW_SECONDS`: a policy that turns slow
(a new version, say) stalls the loop once.
"""

from __future__ import annotations

INLINE_SECONDS = 0.0005  # calls faster than this on average cost less on the loop than handed off
SLOW_SECONDS = 10 * INLINE_SECONDS  # one call this slow ends its pair's inline calls at once
INLINE_MAX_BODY = 16 * 1024  # bytes; a larger body may be a batch far slower than the average call
_WEIGHT = 0.1  # of the newest duration in the average
_FIRST_CALLS = 3  # handed off whatever their durations, to learn them


class InlineCalls:
    """Learns each (route, policy) pair's call duration and says whether the loop may run the next.

    Used from the event loop's thread only."""

    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._seconds: dict[tuple[str, str], float] = {}  # only pairs whose calls succeeded: served policies
        self._calls: dict[tuple[str, str], int] = {}

    def inline(self, key: tuple[str, str], body_bytes: float) -> bool:
        return (
            self._enabled
            and body_bytes <= INLINE_MAX_BODY
            and self._calls.get(key, 0) >= _FIRST_CALLS
            and self._seconds[key] < INLINE_SECONDS
        )

    def record(self, key: tuple[str, str], seconds: float) -> None:
        """A call of `key` succeeded in `seconds`; a slow one sends the next calls to the threads at once."""
        average = self._seconds.get(key)
        if average is None or seconds >= SLOW_SECONDS:
            self._seconds[key] = seconds
        else:
            self._seconds[key] = average + _WEIGHT * (seconds - average)
        self._calls[key] = self._calls.get(key, 0) + 1
