"""On-policy algorithms in a Box action space: a short run learns, and its policy exports."""

import math

import numpy as np
import pytest

from gymserve.agents import load_trained_policy, train
from gymserve.policies import RandomPolicy, load
from gymserve.policies.episodes import evaluate
from gymserve.policies.export.policy_export import export_policy

CONTINUOUS = "gymserve/CartPoleContinuousBullet-v0"
SHORT_RUN = {"seed": 1, "max_steps": 4096, "eval_interval": 4096, "eval_episodes": 10}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "config"),
    [
        ("ppo", {"num_envs": 4, "n_steps": 128, "batch_size": 128, "n_epochs": 10, "learning_rate": 1e-3}),
        ("trpo", {"n_steps": 512}),  # otherwise the shipped config
    ],
)
def test_box_actions_learn_and_export_with_the_served_shapes(tmp_path, algorithm, config):
    result = train(algorithm, CONTINUOUS, tmp_path / "run", {**config, **SHORT_RUN}, progress_bar=False)
    trained = load_trained_policy(tmp_path / "run")
    random_policy = RandomPolicy(trained.policy.observation_space, trained.policy.action_space, seed=0)
    random_return = evaluate(random_policy, CONTINUOUS, 10, "stochastic", seed=3).average_return
    assert result.state.best_evaluation_return > 3 * random_return, (
        result.state.best_evaluation_return,
        random_return,
    )

    policy = trained.policy
    observations = np.random.default_rng(5).uniform(-1.0, 1.0, (64, 4)).astype(np.float32)
    assert policy.network_outputs(observations).shape == (64, 2), "[mean | log_std] for one action dimension"
    export_policy(policy, tmp_path / "export", formats=("savedmodel",), metadata={"env_id": CONTINUOUS})
    exported = load(tmp_path / "export", backend="tensorflow")
    actions = exported.action(observations).action
    assert actions.shape == (64, 1) and np.all(np.abs(actions) <= 1.0)
    assert len(np.unique(actions)) > 48, "distinct observations get distinct actions"
    np.testing.assert_allclose(actions, policy.action(observations).action, atol=1e-6)
    assert math.isfinite(float(exported.action(observations[0], mode="stochastic", seed=0).action[0]))
