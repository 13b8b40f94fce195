"""Errors the gymserve environments raise, shared so callers catch one type for every env."""

from gymnasium.error import ResetNeeded


class ResetNeededError(ResetNeeded, RuntimeError):
    """`step()` or `render()` was called before the first `reset()` or after the episode ended."""
