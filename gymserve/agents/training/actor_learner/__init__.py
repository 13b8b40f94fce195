"""Training as a library, under TF-Agents' names: an Actor collects, a Learner learns, triggers act
between iterations; `gymserve train` (trainer.py) is one loop over these same pieces.

algorithms.py      make_algorithm: an algorithm seeded and configured as `gymserve train` builds it
collect_policy.py  algorithm.collect_policy: the exploring behaviour an Actor steps envs with
actor.py           Actor: steps or episodes per run, observers, metrics, summaries
metrics.py         episode metrics of an Actor (collect_metrics, eval_metrics)
collection.py      where a Learner's experience comes from: its own envs, an Actor, Ray actors
learner.py         Learner: iterations, history, summaries, evaluation, checkpoints and resume
state.py           the learner's counters saved in every checkpoint
triggers.py        evaluation, checkpoint, export, steps-per-second and any callable, on intervals
summaries.py       TensorBoard scalars
"""

from gymserve.agents.training.actor_learner import triggers
from gymserve.agents.training.actor_learner.actor import Actor
from gymserve.agents.training.actor_learner.algorithms import make_algorithm
from gymserve.agents.training.actor_learner.learner import Learner, LossInfo
from gymserve.agents.training.actor_learner.metrics import collect_metrics, eval_metrics

__all__ = ["Actor", "Learner", "LossInfo", "collect_metrics", "eval_metrics", "make_algorithm", "triggers"]
