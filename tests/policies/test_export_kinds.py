"""Every policy kind is exported or refused in one line that names what is exported: deterministic
and Gaussian actors reload with the parity of the other exports; random, scripted and mixture
policies and wrappers are refused."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf
from policy_support import CARTPOLE_OBSERVATIONS, observations_for

from gymserve.policies import (
    ActorPolicy,
    GaussianPolicy,
    GreedyPolicy,
    MixturePolicy,
    RandomPolicy,
    ScriptedPolicy,
    export_policy,
    load,
)

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
BOUNDED = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32))
UNBOUNDED = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
EXPORTABLE = (
    "exported policies are ActorPolicy objects (a Keras network read as categorical, squashed_gaussian, "
    "noisy_deterministic, deterministic, gaussian)"
)


def network(outputs: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(outputs)]
    )


@pytest.mark.parametrize(
    ("kind", "action_space", "outputs"),
    [("deterministic", UNBOUNDED, 2), ("deterministic", BOUNDED, 2), ("gaussian", BOUNDED, 4)],
)
def test_deterministic_and_gaussian_actors_reload_with_the_parity_of_other_exports(
    kind, action_space, outputs, tmp_path
):
    policy = ActorPolicy(network(outputs, seed=1), OBSERVATIONS, action_space, distribution=kind, seed=0)
    export_policy(policy, tmp_path / kind)
    observations = observations_for(OBSERVATIONS, 2000, seed=3)
    greedy = policy.action(observations).action
    stochastic = policy.action(observations, mode="stochastic", seed=9).action
    if action_space is BOUNDED:
        assert (greedy == BOUNDED.low).any() or (greedy == BOUNDED.high).any()  # clipping is exercised
    for backend in ("onnx", "tensorflow"):
        loaded = load(tmp_path / kind, backend)
        assert loaded.metadata.action_distribution == kind
        np.testing.assert_allclose(loaded.action(observations).action, greedy, rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            loaded.action(observations, mode="stochastic", seed=9).action, stochastic, rtol=0, atol=1e-5
        )
    model = tf.saved_model.load(str(tmp_path / kind / "saved_model"))
    raw = model.signatures["greedy_action"](observations=tf.constant(observations))["action"].numpy()
    np.testing.assert_allclose(raw, greedy, rtol=0, atol=1e-5)  # clipped inside the model too
    sampled = model.signatures["stochastic_action"](
        observations=tf.constant(observations), seed=tf.constant(1, tf.int64)
    )["action"].numpy()
    assert ((sampled >= action_space.low) & (sampled <= action_space.high)).all()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda: RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2)),
            "a RandomPolicy is not exported",
        ),
        (
            lambda: ScriptedPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2), [(3, 1)]),
            "a ScriptedPolicy is not exported",
        ),
        (
            lambda: MixturePolicy([1.0], [RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))]),
            "a MixturePolicy is not exported",
        ),
        (
            lambda: GreedyPolicy(ActorPolicy(network(2, seed=0), OBSERVATIONS, gym.spaces.Discrete(2))),
            "a GreedyPolicy is not exported: export the policy it wraps",
        ),
        (
            lambda: GaussianPolicy(
                ActorPolicy(network(2, 0), OBSERVATIONS, BOUNDED, distribution="deterministic")
            ),
            "a GaussianPolicy is not exported: export the policy it wraps",
        ),
    ],
)
def test_other_policies_are_refused_in_one_line_naming_the_exported_kinds(make, reason, tmp_path):
    with pytest.raises(TypeError) as refused:
        export_policy(make(), tmp_path / "export")
    message = str(refused.value)
    assert message.startswith(reason) and message.endswith(EXPORTABLE) and "\n" not in message
    assert not (tmp_path / "export").exists()
