"""The shape of TF-Agents' collection API, for code ported from it (docs/coming_from_tf_agents.md).

drivers.py          Driver and its Trajectory items: a policy run in an env, feeding observers
driver_metrics.py   observers that average over the last finished episodes
nests.py            nested values and their named leaves, as TF-Agents' specs are
"""
