"""The off-policy algorithms and their replay machinery.

algorithm.py           OffPolicyAlgorithm: the loop, replay, n-step targets, target updates
replay_buffer.py       the FIFO replay buffer (nested specs; uniform windows that respect episode ends)
prioritized_replay.py  proportional prioritized replay on a sum tree (sum_tree.py)
n_step.py              n-step TD targets from replayed windows
dqn.py, sac.py, td3.py, ddpg.py   the algorithms (ddpg.py explores with exploration_noise.py)
"""
