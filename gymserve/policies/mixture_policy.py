"""A policy that lets a randomly chosen one of several policies act, as TF-Agents' MixturePolicy.

    explore_or_exploit = MixturePolicy([0.1, 0.9], [RandomPolicy(obs, act), greedy_actor])

For every observation of a batch, a policy is drawn from the mixture probabilities (in every
mode) and acts on it in the mode asked for (epsilon-greedy: greedily, then the mixture explores);
`PolicyStep.info["mixture_agent_id"]` says which one. The policies share the mixture's spaces
and keep no state between steps: a recurrent policy's state would advance only on the rows it
happened to act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep
from gymserve.policies.distributions import Categorical, Distribution

MIXTURE_AGENT_ID = "mixture_agent_id"


class MixturePolicy(Policy):
    """Acts with `policies[k]` with probability `mixture_distribution[k]`, drawn per observation.

    `mixture_distribution` is a sequence of probabilities or a `Categorical` with one row of
    logits (TF-Agents passes a categorical distribution).
    """

    def __init__(
        self,
        mixture_distribution: Sequence[float] | np.ndarray | Categorical,
        policies: Sequence[Policy],
        seed: int | None = None,
    ):
        policies = list(policies)
        if not policies:
            raise ValueError("a MixturePolicy needs at least one policy")
        first = policies[0]
        super().__init__(first.observation_space, first.action_space, seed)
        self.probabilities = _mixture_probabilities(mixture_distribution, len(policies))
        for index, policy in enumerate(policies):
            spaces = (policy.observation_space, policy.action_space)
            first_spaces = (first.observation_space, first.action_space)
            if spaces != first_spaces:
                raise ValueError(
                    f"policy {index} acts on {spaces[0]} -> {spaces[1]}; the mixture's first policy on "
                    f"{first_spaces[0]} -> {first_spaces[1]}: they must agree"
                )
            if policy.policy_state_spec:
                raise ValueError(
                    f"policy {index} ({type(policy).__name__}) keeps a state; a MixturePolicy mixes "
                    f"stateless policies only"
                )
        self.policies = tuple(policies)

    def reset(self) -> None:
        for policy in self.policies:
            policy.reset()

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        # Inverse-CDF draws, one uniform number per row, as Categorical.sample does.
        choices = np.minimum(
            (rng.random((len(observations), 1)) > np.cumsum(self.probabilities)).sum(axis=1),
            len(self.policies) - 1,
        )
        # Epsilon-greedy exploration is the mixture's own, added by `action` after this.
        mode = ActionMode.GREEDY if mode is ActionMode.EPSILON_GREEDY else mode
        actions = None
        for index, policy in enumerate(self.policies):
            rows = np.flatnonzero(choices == index)
            if not len(rows):
                continue
            # The public call, so a wrapper's fixed mode and schedule apply; its seed comes from
            # the mixture's generator, so a seeded mixture is reproducible.
            seed = int(rng.integers(2**63))
            chosen = np.asarray(policy.action(observations[rows], mode=mode, seed=seed).action)
            if actions is None:
                actions = np.zeros((len(observations), *chosen.shape[1:]), chosen.dtype)
            actions[rows] = chosen
        return PolicyStep(actions, state, {MIXTURE_AGENT_ID: choices})

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        raise ValueError(
            "a MixturePolicy has no single action distribution; ask each of its policies "
            "(mixture.policies[k].distribution(observation))"
        )


def _mixture_probabilities(
    mixture_distribution: Sequence[float] | np.ndarray | Categorical, count: int
) -> np.ndarray:
    if isinstance(mixture_distribution, Categorical):
        probabilities = mixture_distribution.probabilities().reshape(-1)
    else:
        probabilities = np.asarray(mixture_distribution, np.float64).reshape(-1)
    if (
        probabilities.shape != (count,)
        or not np.isfinite(probabilities).all()
        or (probabilities < 0).any()
        or not np.isclose(probabilities.sum(), 1.0)
    ):
        raise ValueError(
            f"mixture probabilities {probabilities.tolist()} must be {count} non-negative numbers "
            f"summing to 1, one per policy"
        )
    return probabilities
