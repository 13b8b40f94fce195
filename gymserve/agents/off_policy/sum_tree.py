"""A sum tree: non-negative values whose prefix sums are searched in O(log n), vectorised in numpy.

Proportional prioritized replay (Schaul et al., 2016) draws item i with probability p_i / sum p:
draw u uniformly in [0, sum p) and find the item whose cumulative range holds u. The tree is a
binary heap in one array: node k has children 2k and 2k + 1, the root (node 1) holds the total,
and the leaves (a power of two of them, the unused ones 0) hold the values.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """`capacity` non-negative values, all 0 at first."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"a SumTree needs a capacity of at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._leaves = 1 << (self.capacity - 1).bit_length()
        self._nodes = np.zeros(2 * self._leaves, np.float64)

    @property
    def total(self) -> float:
        """The sum of every value."""
        return float(self._nodes[1])

    def values(self, indices: np.ndarray) -> np.ndarray:
        """The values at `indices`."""
        return self._nodes[self._leaf_nodes(indices)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set the values at `indices` (the last one wins for a repeated index) and update the sums."""
        nodes = self._leaf_nodes(indices)
        values = np.broadcast_to(np.asarray(values, np.float64), nodes.shape)
        if not np.all(np.isfinite(values) & (values >= 0)):
            raise ValueError("SumTree values must be finite and non-negative")
        self._nodes[nodes] = values
        parents = np.unique(nodes // 2)
        while len(parents) and parents[-1] >= 1:
            self._nodes[parents] = self._nodes[2 * parents] + self._nodes[2 * parents + 1]
            if parents[-1] == 1:
                break
            parents = np.unique(parents // 2)

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """For each u in [0, total), the index i with sum(values[:i]) <= u < sum(values[:i + 1]).

        Never returns an index whose value is 0, even when rounding puts u at the total.
        """
        if self.total <= 0:
            raise ValueError("cannot search a SumTree whose values are all 0")
        remaining = np.asarray(prefix_sums, np.float64).copy()
        nodes = np.ones(len(remaining), np.int64)
        for _ in range(self._leaves.bit_length() - 1):  # the depth of the leaves
            left = 2 * nodes
            left_sums = self._nodes[left]
            right = ((remaining >= left_sums) & (self._nodes[left + 1] > 0)) | (left_sums <= 0)
            remaining = np.where(right, remaining - left_sums, remaining)
            nodes = left + right
        return nodes - self._leaves

    def _leaf_nodes(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.capacity):
            raise IndexError(f"SumTree indices must lie in [0, {self.capacity}), got {indices}")
        return indices + self._leaves
