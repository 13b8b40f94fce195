"""Training with Ray actors for real: a two-node cluster, solving thresholds and a killed actor.

Each test starts its own Ray (at most two logical CPUs) and always shuts it down. The thresholds are
the environments' solved levels (CartPole-v1: 475 of 500; the 200-step Bullet cart-pole: 190),
well above random play (about 22 and 40 there).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from gymserve.agents import load_trained_policy, train
from gymserve.agents.distributed import DistributedConfig
from gymserve.agents.distributed.actor_log import read_actor_log
from gymserve.policies import load
from gymserve.policies.episodes import evaluate

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

CARTPOLE = "gymserve/CartPole-v1"
BULLET_CARTPOLE = "gymserve/CartPoleContinuousBullet-v0"


@pytest.fixture
def two_node_cluster():
    """Two Ray nodes on this machine, each offering one 'collector' slot."""
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"collector": 1}, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=1, resources={"collector": 1})
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def started_rows(run_dir: Path) -> list[dict[str, str]]:
    return [row for row in read_actor_log(run_dir) if row["event"] == "started"]


@pytest.mark.slow
def test_ppo_actors_on_both_nodes_of_a_cluster_solve_cartpole_across_a_resume(two_node_cluster, tmp_path):
    """The shipped PPO config (8 envs, 4 per actor), one actor per node by their 'collector' slots;
    stopped at 10,240 steps, then the same call with a larger budget resumes it to the target."""
    ray.init(address=two_node_cluster.address, logging_level="WARNING", log_to_driver=False)
    config = DistributedConfig(
        actors=2, ray_address=two_node_cluster.address, resources_per_actor={"collector": 1}
    )
    exports = {"export_every": 4096, "export_to": str(tmp_path / "repository" / "cartpole")}
    first = train(
        "ppo",
        CARTPOLE,
        tmp_path / "run",
        {"max_steps": 10_240, **exports},
        progress_bar=False,
        distributed=config,
    )
    assert (first.stop_reason, first.total_steps) == ("max_steps", 10_240)
    result = train(
        "ppo", CARTPOLE, tmp_path / "run", {"max_steps": 100_000}, progress_bar=False, distributed=config
    )

    node_ids = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(node_ids) == 2
    starts = started_rows(tmp_path / "run")
    assert [(row["step"], row["actor"]) for row in starts] == [
        ("0", "0"),
        ("0", "1"),
        ("10240", "0"),
        ("10240", "1"),
    ]
    assert {row["node_id"] for row in starts[:2]} == {row["node_id"] for row in starts[2:]} == node_ids
    assert result.history.rows[: len(first.history.rows)] == first.history.rows
    assert result.stop_reason == "target_reward"
    trained = load_trained_policy(tmp_path / "run")
    assert evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=12345).average_return >= 475

    # the learner exports as a single-process run does: a version per 4096 steps crossed (1024 a rollout)
    policy_directory = tmp_path / "repository" / "cartpole"
    versions = sorted(int(path.name) for path in policy_directory.iterdir() if path.is_dir())
    assert len(versions) >= 3 and versions == [4096 * k for k in range(1, len(versions) + 1)]
    newest = load(tmp_path / "repository" / "cartpole" / str(versions[-1]))
    assert (newest.metadata.algorithm, newest.metadata.train_step) == ("ppo", versions[-1])


SAC_BULLET_CARTPOLE = {
    "target_reward": 190,
    "max_steps": 30_000,
    "eval_interval": 2000,
    "eval_episodes": 10,
    "checkpoint_interval": 2000,
    "num_envs": 2,
    "actor_hidden_sizes": (64, 64),
    "critic_hidden_sizes": (64, 64),
    "batch_size": 128,
    "learning_starts": 1000,
    "actor_learning_rate": 1e-3,
    "critic_learning_rate": 1e-3,
    "alpha_learning_rate": 1e-3,
    "initial_alpha": 0.1,
    "gradient_steps": 2,  # one per env step, as with one env: two envs step per iteration
}


@pytest.mark.slow
def test_sac_with_two_actors_solves_the_bullet_cartpole_although_one_is_killed(local_ray, tmp_path):
    """kill -9 of actor 0's process at the first evaluation: Ray restarts it, training goes on.

    Training stops at the first evaluation that averages 190, so the average of fresh episodes
    lands around 190 by chance; the fresh check asks that most of them reach it.
    """
    run_dir = tmp_path / "run"
    killed = []

    def kill_actor_zero(state) -> bool:
        if not killed:
            pid = int(next(row["pid"] for row in started_rows(run_dir) if row["actor"] == "0"))
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, state.total_steps))
        return False

    result = train(
        "sac",
        BULLET_CARTPOLE,
        run_dir,
        SAC_BULLET_CARTPOLE,
        progress_bar=False,
        on_evaluation=kill_actor_zero,
        distributed=DistributedConfig(actors=2),
    )

    [(pid, killed_at)] = killed
    restarts = [row for row in read_actor_log(run_dir) if row["event"] == "restarted"]
    assert [(row["actor"], row["restarts"]) for row in restarts] == [("0", "1")]
    assert int(restarts[0]["pid"]) != pid and int(restarts[0]["step"]) >= killed_at
    assert result.stop_reason == "target_reward" and result.total_steps > killed_at
    trained = load_trained_policy(run_dir)
    fresh = evaluate(trained.policy, BULLET_CARTPOLE, 20, "greedy", seed=12345)
    assert np.median(fresh.returns) >= 190, fresh.returns
