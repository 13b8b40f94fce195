"""Client strings repeated in status messages and logs, cut to a size that cannot flood either.

A policy name travels back in the status details (a metadata trailer with a size limit) and
into the log; a 3 MB name must produce neither a 3 MB log line nor a failed trailer.
"""

from __future__ import annotations

ECHO_LIMIT = 256  # characters of a client string repeated back


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` quoted, or its first `limit` characters quoted with a note of the full length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters, cut to {limit})"
