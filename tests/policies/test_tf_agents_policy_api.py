"""The policy API in TF-Agents' shape: PolicyStep tuples, specs, point-mass greedy distributions,
deterministic and unbounded actors with clip, noise wrappers and exhausting scripts."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, mlp, observations_for

from gymserve.policies import (
    ActorPolicy,
    Deterministic,
    GaussianPolicy,
    GreedyPolicy,
    Normal,
    OUNoisePolicy,
    RandomPolicy,
    ScriptedPolicy,
    export_policy,
)

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTIONS = gym.spaces.Box(-1.0, 3.0, (2,), np.float32)
UNBOUNDED = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def linear_network(scale: float) -> keras.Model:
    """Outputs (scale * obs[0], -scale * obs[1]): easy to predict by hand."""
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False)])
    weights = np.zeros((4, 2), np.float32)
    weights[0, 0], weights[1, 1] = scale, -scale
    network.layers[0].set_weights([weights])
    return network


def test_policy_steps_unpack_like_tf_agents_ones():
    policy = RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2), seed=0)
    action, state, info = policy.action(np.zeros(4, np.float32))
    assert action in (0, 1) and state == () and dict(info) == {}
    step = policy.action(np.zeros(4, np.float32))
    assert step._replace(action=7).action == 7


def test_spec_properties_name_the_spaces_and_the_state():
    script = ScriptedPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3), [(2, 1)])
    assert script.observation_spec is CARTPOLE_OBSERVATIONS and script.action_spec == gym.spaces.Discrete(3)
    assert script.policy_state_spec == (((), np.dtype(np.int64)),)
    assert RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2)).policy_state_spec == ()
    assert dict(script.info_spec) == {}


def test_greedy_distribution_is_a_point_mass_on_the_wrapped_mode():
    actor = ActorPolicy(mlp(4, 3, seed=0, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3))
    observations = observations_for(CARTPOLE_OBSERVATIONS, 16)
    greedy = GreedyPolicy(actor).distribution(observations)
    assert isinstance(greedy, Deterministic)
    modes = np.argmax(actor.network_outputs(observations), axis=1)
    np.testing.assert_array_equal(greedy.mode(), modes)
    np.testing.assert_array_equal(greedy.log_prob(modes), 0.0)
    assert (greedy.log_prob((modes + 1) % 3) == -np.inf).all()


def test_a_deterministic_network_acts_its_outputs_in_an_unbounded_box_and_is_clipped_in_a_bounded_one():
    observations = np.array([[0.5, 0.25, 0, 0], [4.0, 4.0, 0, 0]], np.float32)
    unbounded = ActorPolicy(linear_network(2.0), OBSERVATIONS, UNBOUNDED, distribution="deterministic")
    for mode in ("greedy", "stochastic"):
        np.testing.assert_array_equal(
            unbounded.action(observations, mode=mode).action, [[1.0, -0.5], [8, -8]]
        )
    bounded = ActorPolicy(linear_network(2.0), OBSERVATIONS, ACTIONS, distribution="deterministic")
    np.testing.assert_array_equal(bounded.action(observations).action, [[1.0, -0.5], [3, -1]])
    free = ActorPolicy(linear_network(2.0), OBSERVATIONS, ACTIONS, distribution="deterministic", clip=False)
    np.testing.assert_array_equal(free.action(observations).action, [[1.0, -0.5], [8, -8]])


def test_a_gaussian_network_samples_a_normal_and_clips_the_samples():
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, use_bias=False)])
    network.layers[0].set_weights([np.zeros((4, 4), np.float32)])  # mean 0, log_std 0
    policy = ActorPolicy(network, OBSERVATIONS, ACTIONS, distribution="gaussian", seed=0)
    observations = np.zeros((20_000, 4), np.float32)
    distribution = policy.distribution(observations[:1])
    assert isinstance(distribution, Normal) and distribution.scale.tolist() == [[1.0, 1.0]]
    samples = policy.action(observations, mode="stochastic").action
    assert samples.min() == -1.0 and samples.max() <= 3.0
    assert np.mean(samples == -1.0) == pytest.approx(0.1587, abs=0.01)  # P(N(0,1) < -1)


def test_clip_false_is_refused_by_export_and_by_squashed_actors(tmp_path):
    policy = ActorPolicy(linear_network(1.0), OBSERVATIONS, ACTIONS, distribution="deterministic", clip=False)
    with pytest.raises(ValueError, match="an ActorPolicy with clip=False is not exported"):
        export_policy(policy, tmp_path / "export")
    assert not (tmp_path / "export").exists()
    with pytest.raises(ValueError, match="clip=False needs a 'deterministic' or 'gaussian' network"):
        ActorPolicy(mlp(4, 4, seed=0), OBSERVATIONS, ACTIONS, clip=False)


def test_gaussian_noise_has_the_configured_spread_around_the_greedy_action():
    actor = ActorPolicy(linear_network(1.0), OBSERVATIONS, UNBOUNDED, distribution="deterministic")
    noisy = GaussianPolicy(actor, scale=0.5, seed=1)
    observations = np.tile(np.array([[1.0, 1.0, 0, 0]], np.float32), (50_000, 1))
    noise = noisy.action(observations).action - np.array([1.0, -1.0])
    assert noise.mean() == pytest.approx(0.0, abs=0.01) and noise.std() == pytest.approx(0.5, abs=0.01)
    assert isinstance(noisy.distribution(observations[:1]), Normal)
    clipped = GaussianPolicy(
        ActorPolicy(linear_network(1.0), OBSERVATIONS, ACTIONS, distribution="deterministic"), 5.0, seed=2
    )
    actions = clipped.action(observations[:1000]).action
    assert actions.min() == -1.0 and actions.max() == 3.0


def test_ou_noise_follows_its_recursion_and_restarts_on_reset():
    actor = ActorPolicy(linear_network(1.0), OBSERVATIONS, UNBOUNDED, distribution="deterministic")
    noisy = OUNoisePolicy(actor, ou_stddev=0.3, ou_damping=0.2, seed=3)
    observation = np.zeros((1, 4), np.float32)
    rng, expected = np.random.default_rng(3), np.zeros((1, 2))
    for _ in range(5):
        expected = 0.8 * expected + 0.3 * rng.standard_normal((1, 2))
        np.testing.assert_allclose(noisy.action(observation).action, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(noisy.distribution(observation).loc, 0.8 * expected, rtol=1e-5, atol=1e-6)
    noisy.reset()
    np.testing.assert_array_equal(noisy.distribution(observation).loc, [[0.0, 0.0]])
    rows = np.zeros((10_000, 4), np.float32)
    for _ in range(40):  # 0.8^40 < 1e-3: the start is forgotten
        actions = noisy.action(rows).action
    assert actions.std() == pytest.approx(0.3 / np.sqrt(1 - 0.8**2), rel=0.03)  # stationary spread


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda actor: GaussianPolicy(actor, scale=0.0), "scale must be a positive number"),
        (lambda actor: OUNoisePolicy(actor, ou_damping=1.5), "0 < ou_damping <= 1"),
        (
            lambda actor: GaussianPolicy(RandomPolicy(OBSERVATIONS, gym.spaces.Discrete(2))),
            "noise needs a Box action space",
        ),
    ],
)
def test_bad_noise_settings_are_refused(make, message):
    actor = ActorPolicy(linear_network(1.0), OBSERVATIONS, UNBOUNDED, distribution="deterministic")
    with pytest.raises(ValueError, match=message):
        make(actor)


def test_an_exhausted_script_raises_by_default_and_repeats_on_request():
    script = [(1, 1), (0, 0), (2, 2)]
    policy = ScriptedPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3), script)
    state = policy.get_initial_state()
    played = []
    for _ in range(3):
        action, state, _ = policy.action(np.zeros(4, np.float32), state)
        played.append(int(action))
    assert played == [1, 2, 2]
    with pytest.raises(
        ValueError, match="the script is exhausted: it plays 3 steps and step 3 was asked for"
    ):
        policy.action(np.zeros(4, np.float32), state)
    repeating = ScriptedPolicy(
        CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3), script, on_exhausted="repeat_last"
    )
    assert [int(repeating.action(np.zeros(4, np.float32)).action) for _ in range(5)] == [1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="on_exhausted is 'loop'; expected 'raise' or 'repeat_last'"):
        ScriptedPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3), script, on_exhausted="loop")
