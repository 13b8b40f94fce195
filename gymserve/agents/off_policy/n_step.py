"""n-step TD targets from replayed windows of consecutive transitions (Sutton, 1988; Hessel et al., 2018).

Off-policy algorithms bootstrap after summing up to n discounted rewards. A window is cut at its
episode's end (a terminal transition bootstraps nothing, a truncated one still bootstraps from
its final observation) and at the newest stored transition.
"""

from __future__ import annotations

import numpy as np


def n_step_targets(
    rewards: np.ndarray, terminated: np.ndarray, mask: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The discounted reward sums and bootstrap discounts of windows of consecutive transitions.

    `rewards`, `terminated` and `mask` are (batch, n); `mask` marks the transitions that belong
    to the window (a prefix: the window ends at its episode's end or at the newest transition).
    Returns the reward sums, the factor gamma^m (0 if the last transition terminated) for the
    bootstrap value, and the index m - 1 of the last transition whose next observation it uses.
    """
    mask = np.asarray(mask, bool)
    steps = mask.shape[1]
    powers = gamma ** np.arange(steps, dtype=np.float64)
    returns = (np.where(mask, rewards, 0.0) * powers).sum(axis=1)
    last = mask.sum(axis=1) - 1
    rows = np.arange(len(mask))
    discounts = gamma ** (last + 1.0) * (1.0 - np.asarray(terminated, bool)[rows, last])
    return returns.astype(np.float32), discounts.astype(np.float32), last
