"""Structured server logs: one JSON object per line, with an `event` name and its fields.

    log_event(logging.INFO, "policy_loaded", policy="cartpole", version=3)
    {"time": "2025-01-01T12:00:00.000Z", "level": "info", "event": "policy_loaded", "policy": "cartpole",
     "version": 3}

Successful requests are never logged at INFO: the hot path stays free of formatting work.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

LOGGER = logging.getLogger("gymserve.serving")


def log_event(level: int, event: str, *, exc_info: BaseException | None = None, **fields: Any) -> None:
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, event, exc_info=exc_info, extra={"fields": fields})


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send the server's events to `stream` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


class RateLimitedLog:
    """Logs at most `burst` events per `period` seconds; the next one logged counts those dropped.

    For events a client can cause at will (malformed requests, refused tokens): a flood of them
    must not become a flood of log lines.
    """

    def __init__(self, burst: int = 10, period: float = 10.0):
        self._burst, self._period = burst, period
        self._window_start = -period
        self._logged = self._dropped = 0
        self._lock = threading.Lock()

    def log(self, level: int, event: str, **fields: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self._period:
                self._window_start, self._logged = now, 0
            if self._logged >= self._burst:
                self._dropped += 1
                return
            self._logged += 1
            dropped, self._dropped = self._dropped, 0
        log_event(level, event, **fields, **({"similar_events_dropped": dropped} if dropped else {}))
