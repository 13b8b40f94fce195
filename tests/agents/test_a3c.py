import gymnasium as gym
import pytest

from gymserve.agents.on_policy.a3c import A3C, A3CConfig
from gymserve.agents.on_policy.graph_envs import InGraphCartPole, PythonEnvsInGraph
from gymserve.agents.training.env_runner import EnvRunner

CARTPOLE = "gymserve/CartPole-v1"


@pytest.mark.parametrize("in_graph_env", [True, False])
def test_workers_push_concurrently_to_the_global_networks(in_graph_env):
    config = A3CConfig(
        num_workers=2,
        num_envs=2,
        n_steps=10,
        rollouts_per_iteration=6,
        hidden_sizes=(16,),
        in_graph_env=in_graph_env,
    )
    env = gym.make(CARTPOLE)
    a3c = A3C(config, env.observation_space, env.action_space)
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    staleness = [a3c.train_iteration(runner)["a3c/staleness"] for _ in range(3)]

    assert [worker.pushes for worker in a3c.workers] == [18, 18]
    assert a3c.pushes == 36 == int(a3c.optimizer.iterations.numpy()), (
        "every push is one step of the global optimizer"
    )
    assert runner.total_steps == 36 * 10, "each push carries 10 steps of one worker's env"
    assert max(staleness) > 0, "workers computed gradients while others pushed"
    worker_envs = [worker.env for worker in a3c.workers]
    assert all(isinstance(env, InGraphCartPole if in_graph_env else PythonEnvsInGraph) for env in worker_envs)
    assert worker_envs[0] is not worker_envs[1]
    global_kernel = a3c.actor_critic.actor.weights[0]
    assert all(worker.networks.actor.weights[0] is not global_kernel for worker in a3c.workers), (
        "local copies"
    )


def test_every_worker_needs_an_env():
    with pytest.raises(ValueError, match="num_envs 2 is less than num_workers 3"):
        A3CConfig(num_workers=3, num_envs=2)
