"""Samples-per-insert pacing of an off-policy learner against its actors (Reverb's SampleToInsertRatio).

Inserted transitions and sampled ones (gradient steps x batch size) are counted from the moment
`min_size_to_sample` transitions are stored. Their balance

    surplus = (inserted - min_size_to_sample) * samples_per_insert - sampled

stays within +-`error_buffer`: learning waits for data when it would fall below -error_buffer,
and the learner asks actors for no more batches while it would rise above +error_buffer. Batches
requested but not yet delivered count against the upper bound, so actors never run ahead of it.
"""

from __future__ import annotations


class SampleToInsertRatio:
    """Keeps sampled / inserted near `samples_per_insert` once `min_size_to_sample` items are in."""

    def __init__(
        self, samples_per_insert: float, min_size_to_sample: int, error_buffer: float, inserted: int = 0
    ):
        """`inserted` items already stored (a resumed replay) count as consumed at the target ratio."""
        if samples_per_insert <= 0:
            raise ValueError(f"samples_per_insert must be positive, got {samples_per_insert}")
        if min_size_to_sample < 1:
            raise ValueError(f"min_size_to_sample must be at least 1, got {min_size_to_sample}")
        if error_buffer <= 0:
            raise ValueError(f"error_buffer must be positive, got {error_buffer}")
        self.samples_per_insert = samples_per_insert
        self.min_size_to_sample = min_size_to_sample
        self.error_buffer = error_buffer
        self.inserted = inserted
        self.sampled = max(0.0, (inserted - min_size_to_sample) * samples_per_insert)
        self.requested = 0  # items in batches asked for and not yet inserted

    def _surplus(self, inserted: int) -> float:
        return (inserted - self.min_size_to_sample) * self.samples_per_insert - self.sampled

    def can_request(self, items: int) -> bool:
        """Whether a batch of `items` more may be collected now."""
        expected = self.inserted + self.requested + items
        return expected <= self.min_size_to_sample or self._surplus(expected) <= self.error_buffer

    def request(self, items: int) -> None:
        self.requested += items

    def insert(self, items: int, requested: int) -> None:
        """Count `items` stored from a batch of `requested` (fewer when the batch was lost)."""
        self.requested -= requested
        self.inserted += items

    def can_sample(self, items: int) -> bool:
        """Whether `items` may be sampled for learning now."""
        return (
            self.inserted >= self.min_size_to_sample
            and self._surplus(self.inserted) - items >= -self.error_buffer
        )

    def sample(self, items: int) -> None:
        self.sampled += items
