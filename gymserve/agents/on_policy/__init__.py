"""The on-policy algorithms: a compiled rollout, then updates on it, then the rollout is dropped.

algorithm.py          OnPolicyAlgorithm: the config, the compiled rollout, GAE targets and the loss
ppo.py, a2c.py, trpo.py   the algorithms on that skeleton (recurrent_ppo.py: PPO with an LSTM)
a3c.py                A3C's asynchronous workers
acer.py               ACER: on-policy rollouts replayed off-policy (trajectory_replay.py)
gae.py                the one generalized advantage estimation
graph_envs.py         the training envs as a compiled rollout sees them
"""

from gymserve.common.moved_modules import moved_names

# Before on_policy/ was a folder, `gymserve.agents.on_policy` was what algorithm.py is now.
__getattr__ = moved_names(__name__, "gymserve.agents.on_policy.algorithm")
