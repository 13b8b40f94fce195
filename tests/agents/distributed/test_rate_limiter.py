"""The samples-per-insert limiter: learning per collected step stays at the ratio whatever the pace."""

from __future__ import annotations

import pytest

from gymserve.agents.distributed.rate_limiter import SampleToInsertRatio


def test_nothing_is_sampled_before_min_size_and_collection_is_free_until_then():
    limiter = SampleToInsertRatio(samples_per_insert=4.0, min_size_to_sample=100, error_buffer=10.0)
    assert limiter.can_request(100)
    limiter.request(100)
    assert not limiter.can_sample(1)  # requested, not yet inserted
    limiter.insert(99, requested=100)
    assert not limiter.can_sample(1)
    limiter.insert(1, requested=0)
    assert limiter.can_sample(10) and not limiter.can_sample(11)  # surplus 0, error buffer 10


@pytest.mark.parametrize("collector_speedup", [0.1, 1.0, 10.0])
def test_sampled_per_inserted_stays_within_the_error_buffer_whatever_the_collectors_pace(collector_speedup):
    """A learner that samples 32 per round whenever allowed, collectors that deliver batches of 8 at
    `collector_speedup` batches per round whenever allowed: the ratio holds at 2 +- buffer."""
    ratio, batch, round_items, buffer = 2.0, 8, 32, 48.0
    limiter = SampleToInsertRatio(ratio, min_size_to_sample=50, error_buffer=buffer)
    credit = 0.0
    for _ in range(5000):
        credit += collector_speedup
        while credit >= 1 and limiter.can_request(batch):
            limiter.request(batch)
            limiter.insert(batch, requested=batch)
            credit -= 1
        credit = min(credit, 1.0)  # a blocked collector waits; it does not bank batches
        if limiter.can_sample(round_items):
            limiter.sample(round_items)
        if limiter.inserted >= 50:
            surplus = (limiter.inserted - 50) * ratio - limiter.sampled
            assert -buffer <= surplus <= buffer
    assert limiter.sampled / (limiter.inserted - 50) == pytest.approx(ratio, rel=0.01)


def test_batches_in_flight_count_against_collection_and_a_lost_batch_frees_them():
    limiter = SampleToInsertRatio(samples_per_insert=1.0, min_size_to_sample=1, error_buffer=20.0, inserted=1)
    limiter.request(16)
    assert not limiter.can_request(16)  # 32 > 20 once both are in
    limiter.insert(0, requested=16)  # the actor died: nothing stored
    assert limiter.can_request(16)


def test_a_resumed_replay_counts_as_consumed_at_the_ratio():
    limiter = SampleToInsertRatio(
        samples_per_insert=3.0, min_size_to_sample=10, error_buffer=5.0, inserted=110
    )
    assert limiter.sampled == 300.0
    assert limiter.can_sample(5) and not limiter.can_sample(6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0.0, 1, 1.0), "samples_per_insert must be positive, got 0.0"),
        ((1.0, 0, 1.0), "min_size_to_sample must be at least 1, got 0"),
        ((1.0, 1, 0.0), "error_buffer must be positive, got 0.0"),
    ],
)
def test_bad_settings_are_refused_by_name(arguments, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        SampleToInsertRatio(*arguments)
