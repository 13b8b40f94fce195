"""One line per problem of a pydantic ValidationError, naming the field: `workers: Input should be ...`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, sources: Mapping[str, str] | None = None) -> str:
    """The problems of `error` joined by "; ", each as `field.path: message`.

    With `sources` (top-level field -> where its value came from), each problem names the source
    of the value it is about, so a user knows which flag or file to fix.
    """
    return "; ".join(_describe(problem, sources or {}) for problem in error.errors())


def _describe(problem: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    location = problem["loc"]
    text = f"{'.'.join(map(str, location)) or 'config'}: {problem['msg']}"
    if location and location[0] in sources:
        return f"{text} (from {sources[location[0]]})"
    if not location and sources:  # a rule across fields: name every layer involved
        return f"{text} (values from {', '.join(dict.fromkeys(sources.values()))})"
    return text
