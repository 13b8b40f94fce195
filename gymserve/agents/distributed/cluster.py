"""How a run uses Ray: the actors' count and placement, and the connection to a cluster."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gymserve.common.extras import MissingExtraError, require


class MissingRayError(MissingExtraError):
    """Ray is not installed, so actors cannot be started."""


class UnsupportedDistributedTrainingError(ValueError):
    """The algorithm or config cannot train with actors."""


class DistributedConfig(BaseModel):
    """How many Ray actors collect for the learner, where they run and how they are paced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actors: int = Field(gt=0, description="Collector processes; the config's num_envs are split among them.")
    ray_address: str | None = Field(
        None,
        description="'auto' or HOST:PORT of a running Ray cluster, whose nodes the actors spread over; "
        "None starts a local Ray for the run and stops it afterwards.",
    )
    num_cpus_per_actor: float = Field(1.0, gt=0, description="CPUs Ray reserves for each actor.")
    resources_per_actor: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each actor needs, e.g. {'collector': 1} to run only on nodes "
        "started with that resource.",
    )
    weight_sync_interval: int = Field(
        1,
        gt=0,
        description="Off-policy: learner updates (gradient rounds) between weight publications. On-policy "
        "algorithms publish after every update, as each rollout must come from the latest weights.",
    )
    steps_per_batch: int = Field(
        16,
        gt=0,
        description="Off-policy: steps of its envs an actor takes per batch of transitions it ships.",
    )
    samples_per_insert: float | None = Field(
        None,
        gt=0,
        description="Off-policy: transitions sampled for learning per transition collected, held by a rate "
        "limiter whatever the actors' speed; None: the config's gradient_steps * batch_size / "
        "(train_freq * num_envs), the ratio of a single-process run.",
    )
    max_restarts: int = Field(
        -1, ge=-1, description="Times Ray restarts an actor whose process died; -1: always."
    )


def import_ray() -> ModuleType:
    """The `ray` module, or a MissingRayError saying how to install it."""
    return require("ray", "training with actors", MissingRayError)


def connect(config: DistributedConfig) -> bool:
    """Connect to the configured Ray cluster, or start a local one sized for the actors.

    True when this call started Ray (so the run shuts it down); an already initialized Ray is used
    as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    if config.ray_address is None:
        options["num_cpus"] = max(1, round(config.actors * config.num_cpus_per_actor))
        options["resources"] = {
            name: amount * config.actors for name, amount in config.resources_per_actor.items()
        }
    else:
        options["address"] = config.ray_address
    ray.init(**options)
    return True


def actor_options(config: DistributedConfig) -> dict[str, Any]:
    """Ray options of every collector: its reservation, restarts, and spreading over the nodes."""
    return {
        "num_cpus": config.num_cpus_per_actor,
        "resources": dict(config.resources_per_actor),
        "max_restarts": config.max_restarts,
        "max_task_retries": 0,  # a batch in flight when its actor dies is lost, not collected twice
        "scheduling_strategy": "SPREAD",
    }
