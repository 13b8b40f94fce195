"""Checks of the environments' constructor arguments, so a bad value fails at `gym.make`, naming
the argument, instead of at the first step or as a wrong simulation."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np


def check_count(name: str, value: Any) -> None:
    """`value` must be a positive integer (a count of steps, environments or pixels)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_finite(name: str, value: Any, *, minimum: float | None = None) -> None:
    """`value` must be a finite real number, at least `minimum` when given (a weight, a gain, a std)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")


def check_limit(name: str, value: Any) -> None:
    """`value` must be a positive number or infinity (a limit that may be switched off)."""
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number or math.inf (no limit), got {value!r}")


def check_flag(name: str, value: Any) -> None:
    """`value` must be True or False: a string such as "False" would silently count as true."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
