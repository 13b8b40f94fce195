"""One line per problem of a pydantic ValidationError, naming the field: `workers: Input should be ...`."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError) -> str:
    """The problems of `error` joined by "; ", each as `field.path: message`."""
    return "; ".join(
        f"{'.'.join(map(str, problem['loc'])) or 'config'}: {problem['msg']}" for problem in error.errors()
    )
