"""`RemotePolicy`: a policy served by a gymserve server, usable wherever a local Policy is.

    with PolicyClient("127.0.0.1:8500") as client:
        policy = RemotePolicy(client, "cartpole")
        episode = gymserve.policies.episodes.run_episode(env, policy, seed=0)

Actions go through one StreamAct session, so a stateful policy keeps its state on the server;
`reset()` (called by `run_episode` before each episode) makes the next step start an episode.
The spaces and version are read from the server once, and every call asks for that version.
A RemotePolicy belongs to one control loop at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep
from gymserve.policies.distributions import Distribution, distribution_from_parameters
from gymserve.policies.time_step import StepType, is_time_step
from gymserve.serving.client.policy_client import PolicyClient, PolicyInfo, StreamSession


class RemotePolicy(Policy):
    """Acts by asking the server for policy `name` (its latest version unless `version` is given)."""

    def __init__(self, client: PolicyClient, name: str, version: int | None = None):
        info = client.get_policy(name, version)
        super().__init__(info.observation_space.to_gymnasium(), info.action_space.to_gymnasium())
        self.info: PolicyInfo = info
        self._client = client
        self._session: StreamSession | None = None
        self._session_mode: tuple[str, float | None] | None = None
        self._episode_start = True

    def reset(self) -> None:
        self._episode_start = True

    def action(
        self,
        observation: Any,
        state: PolicyState = (),
        mode: ActionMode | str = ActionMode.GREEDY,
        *,
        epsilon: float | None = None,
        seed: int | None = None,
    ) -> PolicyStep:
        """The server's action; the server validates the observation, mode and epsilon. A TimeStep
        gives its observation, and a FIRST step starts an episode."""
        if is_time_step(observation):
            self._episode_start |= bool(np.any(np.asarray(observation.step_type) == StepType.FIRST))
            observation = observation.observation
        session = self._session_for(ActionMode(mode).value, epsilon)
        actions = session.step(observation, episode_start=self._episode_start, seed=seed)
        self._episode_start = False
        return PolicyStep(actions, state)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> RemotePolicy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _distribution(self, observations: Any, state: PolicyState) -> Distribution:
        result = self._client.act_with_details(
            observations, self.info.name, version=self.info.version, return_distribution=True
        )
        try:
            return distribution_from_parameters(result.distribution, self.action_space)
        except ValueError as error:
            raise ValueError(f"policy {self.info.name!r} serves {error}") from None

    def _session_for(self, mode: str, epsilon: float | None) -> StreamSession:
        """The open session for `mode`; a new mode, or a failed session, opens a new one."""
        if self._session is None or self._session.closed or self._session_mode != (mode, epsilon):
            self.close()
            self._session = self._client.stream(
                self.info.name, version=self.info.version, mode=mode, epsilon=epsilon
            )
            self._session_mode = (mode, epsilon)
        return self._session
