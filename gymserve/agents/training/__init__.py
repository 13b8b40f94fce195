"""The training machinery every algorithm runs in: the loop, its config, runs and their files.

trainer.py            the one training loop (`train`): a Learner, the default triggers, the stop rules
actor_learner/        the library pieces of it: Actor, Learner, triggers, make_algorithm
preflight.py          checks before a run trains: a budget short of the first update, output folders
config.py             TrainingConfig, the fields every algorithm shares, and how a run's config resolves
registry.py           the algorithms by name, as lazy entry points: what `gymserve train` offers
env_runner.py         the training envs as algorithms see them
schedules.py          hyperparameter schedules over environment steps
runs.py               run directories (run.json) and loading their trained policy
checkpoints.py        atomic checkpoints
history.py, plots.py  the learning curve as CSV and PNG
configs/              the shipped config of each algorithm per environment
periodic_exports.py   policy exports while training, as numbered versions a server picks up
saved_policies.py     a policy on disk, from a run or from an export
"""
