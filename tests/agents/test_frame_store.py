"""Frames stored once: a buffer with `frame_stacks` reads back exactly what the plain buffer does."""

import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents.off_policy.dqn import DQN, DQNConfig
from gymserve.agents.off_policy.prioritized_replay import PrioritizedReplayBuffer
from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.agents.training.env_runner import Transition

STACK, SIDE, ENVS = 4, 6, 3
FRAMES = (("observation", "next_observation"),)
SPEC = {
    "observation": ((STACK, SIDE, SIDE), np.uint8),
    "action": ((), np.int64),
    "next_observation": ((STACK, SIDE, SIDE), np.uint8),
    "terminated": ((), np.bool_),
    "done": ((), np.bool_),
}


def stacked_transitions(steps, seed=0, side=SIDE, longest=12):
    """Transitions of ENVS envs that stack their last STACK random frames; episodes of 1 to `longest` steps
    end terminated or truncated, and start from the reset frame repeated (as Gymnasium pads)."""
    rng = np.random.default_rng(seed)

    def reset():
        return np.repeat(rng.integers(256, size=(1, side, side), dtype=np.uint8), STACK, axis=0)

    observations = [reset() for _ in range(ENVS)]
    remaining = rng.integers(1, longest + 1, size=ENVS)
    for _ in range(steps):
        frames = rng.integers(256, size=(ENVS, 1, side, side), dtype=np.uint8)
        next_observations = np.concatenate([np.stack(observations)[:, 1:], frames], axis=1)
        remaining -= 1
        done = remaining == 0
        yield {
            "observation": np.stack(observations),
            "action": rng.integers(4, size=ENVS),
            "next_observation": next_observations,
            "terminated": done & (rng.random(ENVS) < 0.5),
            "done": done,
        }
        observations = [reset() if ended else next_observations[i] for i, ended in enumerate(done)]
        remaining[done] = rng.integers(1, longest + 1, size=int(done.sum()))


def filled(capacity, steps, buffer_type=ReplayBuffer, **options):
    plain, once = (
        buffer_type(SPEC, capacity, **options),
        buffer_type(SPEC, capacity, **options, frame_stacks=FRAMES),
    )
    for items in stacked_transitions(steps):
        plain.add_batch(items)
        once.add_batch(items)
    return plain, once


def assert_same(left, right):
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].dtype == right[name].dtype
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


@pytest.mark.parametrize("steps", [3, 5, 40, 41, 200], ids=lambda steps: f"{steps}-steps")
def test_frames_stored_once_read_back_as_the_plain_buffer_stores_them(steps):
    plain, once = filled(ENVS * 40, steps)  # from partly filled to wrapped around several times
    assert_same(plain.gather_all(), once.gather_all())
    for num_steps in (None, 1, 3):
        assert_same(
            plain.sample(64, np.random.default_rng(1), num_steps),
            once.sample(64, np.random.default_rng(1), num_steps),
        )
    plain_windows, plain_mask = plain.sample_episode_windows(64, np.random.default_rng(2), 3)
    once_windows, once_mask = once.sample_episode_windows(64, np.random.default_rng(2), 3)
    assert_same(plain_windows, once_windows)
    np.testing.assert_array_equal(plain_mask, once_mask)


@pytest.mark.parametrize("steps", [3, 40, 95], ids=lambda steps: f"{steps}-steps")
def test_a_checkpoint_keeps_the_frames_once_and_reloads_into_the_same_items(steps):
    plain, once = filled(ENVS * 40, steps)
    saved = once.gather_all(frames_once=True)
    assert "observation" not in saved and "next_observation" not in saved
    plain_bytes = sum(array.nbytes for array in plain.gather_all().values())
    assert sum(array.nbytes for array in saved.values()) < plain_bytes / 2
    for reloaded in (
        ReplayBuffer(SPEC, ENVS * 40, frame_stacks=FRAMES),
        ReplayBuffer(SPEC, ENVS * 10, frame_stacks=FRAMES),
    ):
        reloaded.load(saved)
        kept = reloaded.capacity // ENVS
        assert_same(
            {name: array[:, -kept:] for name, array in plain.gather_all().items()}, reloaded.gather_all()
        )
    reloaded = ReplayBuffer(SPEC, ENVS * 40, frame_stacks=FRAMES)
    reloaded.load(saved)
    for buffer in (plain, reloaded):
        for items in stacked_transitions(7, seed=5):
            buffer.add_batch(items)
    assert_same(plain.gather_all(), reloaded.gather_all())


def test_a_buffer_of_one_slot_per_env_keeps_each_whole_observation():
    plain, once = filled(ENVS, 7)
    assert_same(plain.gather_all(), once.gather_all())


def test_prioritized_draws_and_a_reloaded_buffer_match_the_plain_buffer():
    plain, once = filled(ENVS * 30, 95, PrioritizedReplayBuffer, seed=0)
    for buffer in (plain, once):
        _, _, positions, _ = buffer.sample_prioritized_windows(32, np.random.default_rng(3), 2, 0.4)
        buffer.update_priorities(positions, np.arange(32.0))
    assert_same(plain.gather_all(), once.gather_all())
    reloaded = PrioritizedReplayBuffer(SPEC, ENVS * 30, seed=0, frame_stacks=FRAMES)
    reloaded.load(once.gather_all(frames_once=True))
    for buffer in (plain, once, reloaded):
        buffer.add_batch(next(stacked_transitions(1, seed=9)))
    plain_draw = plain.sample_prioritized_windows(32, np.random.default_rng(4), 3, 0.4)
    for buffer in (once, reloaded):
        draw = buffer.sample_prioritized_windows(32, np.random.default_rng(4), 3, 0.4)
        assert_same(plain_draw[0], draw[0])
        for expected, got in zip(plain_draw[1:], draw[1:], strict=True):
            np.testing.assert_array_equal(expected, got)


def test_atari_frames_once_take_little_more_than_one_frame_per_transition():
    """Plain replay holds 2 * STACK frames per transition; frames once hold one, plus the whole
    observations where episodes start (one in 50 transitions here) and an index."""
    spec = {
        **SPEC,
        "observation": ((STACK, 84, 84), np.uint8),
        "next_observation": ((STACK, 84, 84), np.uint8),
    }
    plain, once = ReplayBuffer(spec, ENVS * 200), ReplayBuffer(spec, ENVS * 200, frame_stacks=FRAMES)
    for items in stacked_transitions(400, side=84, longest=100):
        plain.add_batch(items)
        once.add_batch(items)
    other_bytes = plain.nbytes - 2 * ENVS * 200 * STACK * 84 * 84
    ratio = (once.nbytes - other_bytes) / (plain.nbytes - other_bytes)
    assert 1 / (2 * STACK) < ratio < 1.5 / (2 * STACK)


def unstacked(items):
    """`items` with next observations that are not the observations shifted on by one frame."""
    return {**items, "next_observation": items["next_observation"][:, ::-1].copy()}


def test_observations_that_are_not_shifted_stacks_are_refused():
    buffer = ReplayBuffer(SPEC, 30, frame_stacks=FRAMES)
    with pytest.raises(ValueError, match="replay_frames_once=False"):
        buffer.add_batch(unstacked(next(stacked_transitions(1))))


@pytest.mark.parametrize("buffer_type", [ReplayBuffer, PrioritizedReplayBuffer])
@pytest.mark.parametrize("stacks", [0, 5, 40, 95], ids=lambda stacks: f"after-{stacks}-stacks")
def test_with_fallback_items_that_are_not_stacks_are_stored_whole_and_read_back_as_added(buffer_type, stacks):
    """Frames that looked stacked (blank screens, say) stop being so mid-run: nothing stored is lost."""
    plain = buffer_type(SPEC, ENVS * 40, seed=0)
    once = buffer_type(SPEC, ENVS * 40, seed=0, frame_stacks=FRAMES, frame_stacks_fallback=True)
    transitions = stacked_transitions(stacks + 30, seed=3)
    for step, items in enumerate(transitions):
        items = items if step < stacks or step % 2 else unstacked(items)
        plain.add_batch(items)
        once.add_batch(items)
        if step == stacks:
            assert_same(plain.gather_all(), once.gather_all())
    assert_same(plain.gather_all(), once.gather_all())
    assert_same(plain.sample(64, np.random.default_rng(1), 3), once.sample(64, np.random.default_rng(1), 3))
    reloaded = buffer_type(SPEC, ENVS * 40, seed=0, frame_stacks=FRAMES, frame_stacks_fallback=True)
    added = []
    add_batch = reloaded.add_batch
    reloaded.add_batch = lambda items: added.append(add_batch(items))
    reloaded.load(once.gather_all(frames_once=True))
    assert_same(plain.gather_all(frames_once=True), reloaded.gather_all(frames_once=True))
    assert len(added) <= stacks + 2  # one by one only up to the first item that is not a stack


def random_rgb_transitions(space, steps):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        yield Transition(
            observations=rng.integers(256, size=(ENVS, *space.shape), dtype=np.uint8),
            actions=rng.integers(2, size=ENVS),
            rewards=rng.random(ENVS, dtype=np.float32),
            next_observations=rng.integers(256, size=(ENVS, *space.shape), dtype=np.uint8),
            terminated=np.zeros(ENVS, bool),
            truncated=rng.random(ENVS) < 0.1,
        )


def test_dqn_on_channels_first_rgb_images_stores_them_whole_and_trains():
    space = gym.spaces.Box(0, 255, (3, SIDE, SIDE), np.uint8)
    config = {"hidden_sizes": (8,), "batch_size": 8, "learning_starts": 0, "jit_compile": False}
    dqn = DQN(DQNConfig(**config, buffer_size=ENVS * 20), space, gym.spaces.Discrete(2))
    plain = DQN(
        DQNConfig(**config, buffer_size=ENVS * 20, replay_frames_once=False), space, gym.spaces.Discrete(2)
    )
    for transition in random_rgb_transitions(space, 25):
        dqn.store(transition)
        plain.store(transition)
    assert "replay_observation_frames" not in dqn.state()
    assert_same(plain.replay.gather_all(), dqn.replay.gather_all())
    before = [weight.numpy().copy() for weight in dqn.q_network.weights]
    metrics = dqn.learn(np.zeros((ENVS, *space.shape), np.float32), 25)
    assert all(np.isfinite(value) for value in metrics.values())
    assert any(
        not np.array_equal(old, new.numpy()) for old, new in zip(before, dqn.q_network.weights, strict=True)
    )
    told = DQN(DQNConfig(**config, replay_frames_once=True), space, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="replay_frames_once=False"):
        told.store(next(random_rgb_transitions(space, 1)))


@pytest.mark.parametrize(
    ("space", "setting", "frames_once"),
    [
        (gym.spaces.Box(0, 255, (STACK, SIDE, SIDE), np.uint8), None, True),
        (gym.spaces.Box(0, 255, (STACK, SIDE, SIDE), np.uint8), False, False),
        (gym.spaces.Box(0, 255, (SIDE, SIDE), np.uint8), None, False),
        (gym.spaces.Box(0.0, 1.0, (STACK, SIDE, SIDE), np.float32), None, False),
    ],
)
def test_dqn_stores_frames_once_for_uint8_stacks_unless_told_not_to(space, setting, frames_once):
    dqn = DQN(DQNConfig(replay_frames_once=setting, buffer_size=100), space, gym.spaces.Discrete(2))
    observations = np.zeros((ENVS, *space.shape), space.dtype)
    dqn.replay.add_batch(
        {
            "observation": observations,
            "action": np.zeros(ENVS, np.int64),
            "reward": np.zeros(ENVS, np.float32),
            "next_observation": observations,
            "terminated": np.zeros(ENVS, bool),
            "done": np.zeros(ENVS, bool),
        }
    )
    assert ("replay_observation_frames" in dqn.state()) == frames_once
