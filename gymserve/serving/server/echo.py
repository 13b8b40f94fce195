"""Client strings repeated in status messages and logs, cut to a size that cannot flood either.

A policy name travels back in the status details (a metadata trailer with a size limit) and
into the log; a 3 MB name must produce neither a 3 MB log line nor a failed trailer. Lists of
client strings (input names, output filters) show their first few; whole messages are cut
to `MESSAGE_LIMIT` as a last resort, whatever went into them.
"""

from __future__ import annotations

from collections.abc import Sequence

ECHO_LIMIT = 256  # characters of a client string repeated back
LIST_ECHO_COUNT = 4  # strings of a client list repeated back
LIST_ECHO_LIMIT = 64  # characters of each of them
MESSAGE_LIMIT = 1024  # characters of any status message or logged error


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` quoted, or its first `limit` characters quoted with a note of the full length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}{_cut(len(text), limit)}"


def echo_all(texts: Sequence[str]) -> str:
    """The first few of `texts`, each quoted and cut, comma-separated, with a count of the others."""
    shown = ", ".join(echo(text, LIST_ECHO_LIMIT) for text in texts[:LIST_ECHO_COUNT])
    hidden = len(texts) - LIST_ECHO_COUNT
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def capped(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """`message`, or its first `limit` characters with a note of the full length."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}{_cut(len(message), limit)}"


def _cut(length: int, limit: int) -> str:
    return f"... ({length} characters, cut to {limit})"
