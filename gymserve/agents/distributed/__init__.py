"""Training with Ray actors: many collector processes feed one learner (the trainer's process).

    train("sac", env_id, run_dir, distributed=DistributedConfig(actors=4))
    gymserve train sac --env ID --actors 4 [--ray-address auto]

Each actor (actor.py) is a Ray actor process with its own share of the `num_envs` training envs
and a copy of the acting network; it collects with the weights the learner last published in
Ray's object store and ships what it gathered. The learner (learner.py) stands where the
single-process `EnvRunner` stands in the trainer's loop, so evaluation, checkpoints, resume,
history and TensorBoard are the trainer's own. Off-policy algorithms store shipped transitions in
their replay buffer, paced by a samples-per-insert rate limiter (rate_limiter.py); on-policy ones
update on one rollout from every actor per iteration. cluster.py connects to Ray and places the
actors; actor_log.py records each actor's node, restarts, speed and weight staleness.

Ray is an optional extra: nothing outside this package imports it, and `import_ray` says how to
install it.
"""

from gymserve.agents.distributed.cluster import (
    DistributedConfig,
    MissingRayError,
    UnsupportedDistributedTrainingError,
    import_ray,
)

__all__ = ["DistributedConfig", "MissingRayError", "UnsupportedDistributedTrainingError", "import_ray"]
