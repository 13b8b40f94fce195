import threading

import numpy as np
import pytest

from gymserve.agents.training.env_runner import EnvRunner
from gymserve.envs.cartpole import RESET_BOUND, THETA_THRESHOLD

CARTPOLE = "gymserve/CartPole-v1"


def test_an_ended_episode_reports_its_final_observation_and_restarts_in_the_same_step():
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    transition, length = runner.step(np.array([0, 1])), 1  # pushing one way topples the pole
    while not transition.dones.any():
        transition, length = runner.step(np.array([0, 1])), length + 1
    index = int(np.flatnonzero(transition.terminated)[0])
    assert abs(transition.next_observations[index][2]) > THETA_THRESHOLD
    assert np.all(np.abs(runner.observations[index]) <= RESET_BOUND)
    assert runner.total_steps == 2 * length
    (episode, *_) = runner.pop_finished_episodes()
    assert (episode.step, episode.total_return, episode.length) == (2 * length, float(length), length)
    assert runner.pop_finished_episodes() == []


def test_the_same_seed_replays_the_same_episodes():
    first, second = EnvRunner.make(CARTPOLE, 3, seed=5), EnvRunner.make(CARTPOLE, 3, seed=5)
    np.testing.assert_array_equal(first.observations, second.observations)
    assert not np.array_equal(first.observations, EnvRunner.make(CARTPOLE, 3, seed=6).observations)


def test_split_runners_share_the_step_count_and_episode_record_across_threads():
    runner = EnvRunner.make(CARTPOLE, 4, seed=0)
    parts = runner.split(2)
    assert [part.num_envs for part in parts] == [2, 2]
    np.testing.assert_array_equal(np.concatenate([part.observations for part in parts]), runner.observations)

    def work(part):
        for _ in range(300):
            part.step(np.zeros(part.num_envs, np.int64))

    threads = [threading.Thread(target=work, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runner.total_steps == 4 * 300
    episodes = runner.pop_finished_episodes()
    assert len(episodes) > 4 * (300 // 20) and all(episode.length >= 8 for episode in episodes)


def test_a_snapshot_after_a_split_holds_the_episodes_the_parts_are_in():
    runner = EnvRunner.make(CARTPOLE, 4, seed=0)
    parts = runner.split(2)
    for part in parts:
        for _ in range(7):
            part.step(np.ones(part.num_envs, np.int64))
    restored = EnvRunner.from_snapshot(runner.snapshot(), runner.total_steps)
    np.testing.assert_array_equal(
        restored.observations, np.concatenate([part.observations for part in parts])
    )
    continued = [part.step(np.zeros(part.num_envs, np.int64)).next_observations for part in parts]
    np.testing.assert_array_equal(
        restored.step(np.zeros(4, np.int64)).next_observations, np.concatenate(continued)
    )


def test_steps_taken_elsewhere_are_counted_with_their_episodes():
    runner = EnvRunner.make(CARTPOLE, 1, seed=0, total_steps=100)
    runner.record_steps(50, [(20.0, 20), (30.0, 30)])
    assert runner.total_steps == 150
    assert [(episode.step, episode.total_return) for episode in runner.pop_finished_episodes()] == [
        (150, 20.0),
        (150, 30.0),
    ]


def test_new_observations_reach_the_observer():
    seen = []
    runner = EnvRunner.make(CARTPOLE, 2, seed=0, on_observations=seen.append)
    runner.step(np.array([0, 1]))
    assert len(seen) == 2 and seen[1] is runner.observations


def test_one_action_per_env_is_required():
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    with pytest.raises(ValueError, match="got 3 actions for 2 environments"):
        runner.step(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="cannot split 2 environments into 3 groups"):
        runner.split(3)
