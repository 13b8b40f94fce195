"""Schedules of a hyperparameter over environment steps (epsilon, learning-rate and clip decays)."""

from __future__ import annotations


def linear_schedule(initial: float, final: float, duration: int, step: int) -> float:
    """`initial` moving linearly to `final` over `duration` steps, then `final`."""
    if duration <= 0:
        return final
    fraction = min(step / duration, 1.0)
    return initial + fraction * (final - initial)
