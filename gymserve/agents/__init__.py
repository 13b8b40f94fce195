"""Agents: networks, the replay buffer, the one training loop and the algorithms that plug into it.

    from gymserve.agents import train, load_trained_policy
    train("dqn", "gymserve/CartPole-v1", "runs/dqn")     # rerun to resume
    trained = load_trained_policy("runs/dqn")            # .policy acts greedily or stochastically

Training as a library, TF-Agents' way (actor_learner/): `make_algorithm`, an `Actor` that
collects, a `Learner` that learns, and `triggers` between its iterations, in the caller's loop.

Importing this package stays cheap: TensorFlow is imported by the modules that train or load.
The algorithm interface is documented in gymserve/agents/algorithm.py; docs/adding_an_algorithm.md
shows a new one registered with `register_algorithm`.
"""

from gymserve.agents.training.actor_learner import Actor, Learner, LossInfo, make_algorithm, triggers
from gymserve.agents.training.config import TrainingConfig
from gymserve.agents.training.registry import (
    ALGORITHMS,
    UnknownAlgorithmError,
    algorithm_class,
    register_algorithm,
)
from gymserve.agents.training.runs import (
    RunMismatchError,
    TrainedPolicy,
    UnknownEnvironmentError,
    load_trained_policy,
)
from gymserve.agents.training.trainer import TrainingResult, train

__all__ = [
    "ALGORITHMS",
    "Actor",
    "Learner",
    "LossInfo",
    "RunMismatchError",
    "TrainedPolicy",
    "TrainingConfig",
    "TrainingResult",
    "UnknownAlgorithmError",
    "UnknownEnvironmentError",
    "algorithm_class",
    "load_trained_policy",
    "make_algorithm",
    "register_algorithm",
    "train",
    "triggers",
]
