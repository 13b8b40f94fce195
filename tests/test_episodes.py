"""The shared episode loop, `gymserve play` with a random policy, and registration from Gymnasium."""

import re
import subprocess
import sys

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

from gymserve.cli import main
from gymserve.policies import RandomPolicy
from gymserve.policies.episodes import evaluate, run_episode, write_video

CARTPOLE = "gymserve/CartPole-v1"
MINITAUR = "gymserve/Minitaur-v0"


def test_gymnasium_imports_gymserve_from_the_module_prefix():
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'gymserve' not in sys.modules\n"
        "env = gym.make('gymserve:gymserve/CartPole-v1')\n"
        "print(env.spec.id, env.spec.max_episode_steps, env.spec.reward_threshold)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["gymserve/CartPole-v1", "500", "475.0"]


def random_policy(env):
    return RandomPolicy(env.observation_space, env.action_space, seed=0)


def test_run_episode_counts_every_reward_and_step():
    env = gym.make(CARTPOLE)
    episode = run_episode(env, random_policy(env), "stochastic", seed=3)
    # CartPole pays 1 per step, so the return equals the length
    assert episode.total_return == episode.length > 0
    assert len(episode.action_seconds) == episode.length
    again = run_episode(env, random_policy(env), "stochastic", seed=3)
    assert (again.total_return, again.length) == (episode.total_return, episode.length)


def test_evaluate_is_reproducible_and_matches_single_episodes():
    env = gym.make(CARTPOLE)
    first = evaluate(random_policy(env), CARTPOLE, 4, "stochastic", seed=10)
    second = evaluate(random_policy(env), CARTPOLE, 4, "stochastic", seed=10)
    np.testing.assert_array_equal(first.returns, second.returns)
    np.testing.assert_array_equal(first.returns, first.lengths)
    assert first.average_return == pytest.approx(np.mean(first.returns))
    assert len(set(first.lengths.tolist())) > 1, "episodes with different seeds should differ"


def test_evaluate_needs_an_episode():
    env = gym.make(CARTPOLE)
    with pytest.raises(ValueError, match="episodes must be at least 1"):
        evaluate(random_policy(env), CARTPOLE, 0)


def test_write_video_refuses_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        write_video([np.zeros((8, 8, 3), np.uint8)], tmp_path / "clip.avi", fps=10)
    assert not list(tmp_path.iterdir())


def test_play_random_minitaur_prints_return_and_length(capsys):
    assert main(["play", "--env", MINITAUR, "--policy", "random", "--episodes", "1"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"episode 1: return (-?\d+\.\d{3}), length (\d+)", line)
    assert match, line
    assert 1 <= int(match.group(2)) <= 1000


def test_play_films_the_episode_frame_by_frame(tmp_path, capsys):
    video = tmp_path / "cartpole.gif"
    assert main(["play", "--env", CARTPOLE, "--policy", "random", "--seed", "4", "--video", str(video)]) == 0
    output = capsys.readouterr().out
    length = int(re.search(r"length (\d+)", output).group(1))
    frames = imageio.mimread(video)
    assert len(frames) == length + 1  # the reset frame, then one per step
    assert frames[0].ndim == 3 and frames[0].shape[2] in (3, 4)
    assert f"written to {video}" in output


def test_play_names_unknown_environments(capsys):
    assert main(["play", "--env", "gymserve/NoSuchEnv-v0"]) == 2
    error = capsys.readouterr().err
    assert "gymserve/NoSuchEnv-v0" in error and MINITAUR in error
