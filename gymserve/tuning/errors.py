"""The error every tuning setting that cannot be used raises, so callers catch one type."""


class TuningError(ValueError):
    """Settings a study cannot run with; the message names the setting and the problem."""
