"""StreamAct keeps each stream's policy state and restarts it at episode boundaries."""

from __future__ import annotations

import numpy as np
from serving_support import SCRIPT_LENGTH, observations

from gymserve.serving import PolicyClient

OBSERVATION = observations(1)[0]


def test_a_stream_advances_the_state_and_restarts_it_at_episode_start(client: PolicyClient):
    with client.stream("scripted") as session:
        assert [session.step(OBSERVATION) for _ in range(3)] == [0, 1, 2]
        assert session.step(OBSERVATION, episode_start=True) == 0
        assert session.step(OBSERVATION) == 1


def test_episode_end_answers_then_forgets_the_state(client: PolicyClient):
    with client.stream("scripted") as session:
        assert [session.step(OBSERVATION) for _ in range(2)] == [0, 1]
        assert session.step(OBSERVATION, episode_end=True) == 2
        assert session.step(OBSERVATION) == 0


def test_the_state_outlives_the_script_and_stays_on_its_last_action(client: PolicyClient):
    with client.stream("scripted") as session:
        actions = [session.step(OBSERVATION) for _ in range(SCRIPT_LENGTH + 3)]
    assert actions == [*range(SCRIPT_LENGTH), SCRIPT_LENGTH - 1, SCRIPT_LENGTH - 1, SCRIPT_LENGTH - 1]


def test_streams_keep_separate_states(client: PolicyClient):
    with client.stream("scripted") as first, client.stream("scripted") as second:
        assert [first.step(OBSERVATION) for _ in range(3)] == [0, 1, 2]
        assert second.step(OBSERVATION) == 0
        assert first.step(OBSERVATION) == 3
        assert second.step(OBSERVATION, episode_start=True) == 0


def test_a_batched_stream_keeps_one_state_per_row(client: PolicyClient):
    batch = observations(3)
    with client.stream("scripted") as session:
        np.testing.assert_array_equal(session.step(batch), [0, 0, 0])
        np.testing.assert_array_equal(session.step(batch), [1, 1, 1])
        np.testing.assert_array_equal(session.step(batch, episode_start=True), [0, 0, 0])


def test_unary_calls_always_start_from_the_initial_state(client: PolicyClient):
    assert [client.act(OBSERVATION, "scripted") for _ in range(3)] == [0, 0, 0]


def test_stream_responses_name_the_version_that_answered(client: PolicyClient):
    with client.stream("linear", version=1) as pinned, client.stream("linear") as latest:
        assert pinned.step_with_details(OBSERVATION).policy_version == 1
        assert latest.step_with_details(OBSERVATION).policy_version == 2
