"""What a run trains, as run.json records it; an algorithm built for a run carries it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import gymserve
from gymserve.agents.training.config import TrainingConfig


@dataclass(frozen=True)
class RunInfo:
    """What a run trains: the algorithm's registry name, the env id and the resolved config
    (with the source of each field that did not keep its default)."""

    algorithm: str
    env_id: str
    config: TrainingConfig
    config_sources: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "algorithm": self.algorithm,
                "env_id": self.env_id,
                "config": self.config.model_dump(),
                "config_sources": self.config_sources,
                "gymserve_version": gymserve.__version__,
            },
            indent=2,
        )
