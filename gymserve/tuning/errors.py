"""The error every tuning setting that cannot be used raises, so callers catch one type."""

from gymserve.common.extras import MissingExtraError


class TuningError(ValueError):
    """Settings a study cannot run with; the message names the setting and the problem."""


class MissingOptunaError(MissingExtraError, TuningError):
    """Optuna is not installed: a `MissingExtraError`, and a `TuningError` like every other refusal."""
