"""The policy interface: how every actor in gymserve turns observations into actions.

    policy = gymserve.policies.load("exports/cartpole")
    observation, _ = env.reset(seed=0)
    state = policy.get_initial_state()
    step = policy.action(observation, state, mode="stochastic", seed=7)
    observation, reward, terminated, truncated, _ = env.step(step.action)

`Policy.action` validates the observation against the observation space, adds a batch
dimension when given a single observation, dispatches on the mode and clips to the action
bounds; subclasses implement only `_distribution` (and `_action` when they do not act from a
distribution). Policies never import serving code.

Wherever a policy takes an observation it also takes a TF-Agents-shaped `TimeStep` (time_step.py).
A policy built with `emit_log_probability` or `emit_distribution_parameters` fills
`PolicyStep.info` with `"log_probability"` (of the action drawn, before epsilon exploration and
clipping) or `"dist_params"` (the distribution's `parameters()`), as TF-Agents' policies do.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions import Distribution
from gymserve.policies.signatures import observation_dtype
from gymserve.policies.small_arrays import FLOAT32, INT64, all_finite, within_bounds
from gymserve.policies.time_step import StepType, TimeStep, is_time_step, time_step_spec

LOG_PROBABILITY = "log_probability"
DIST_PARAMS = "dist_params"

PolicyState = tuple[np.ndarray, ...]


class ActionMode(str, enum.Enum):
    """How a policy picks its action; chosen per call so one exported policy serves all modes."""

    GREEDY = "greedy"
    STOCHASTIC = "stochastic"
    EPSILON_GREEDY = "epsilon_greedy"


class PolicyStep(NamedTuple):
    """The result of `Policy.action`: the action, the next policy state and extra outputs;
    `action, state, info = step` unpacks it as TF-Agents' PolicyStep does."""

    action: np.ndarray
    state: PolicyState = ()
    info: Mapping[str, Any] = MappingProxyType({})


class Policy(abc.ABC):
    """Maps observations to actions for one observation space and one action space.

    `observation_space=None` (or a `time_step_spec` whose observation is None) makes a policy that
    ignores its observations, such as a random or scripted one: a plain observation then counts as
    one, and a `TimeStep`'s `step_type` shape is the batch.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space | TimeStep | None,
        action_space: gym.spaces.Space,
        seed: int | None = None,
        *,
        emit_log_probability: bool = False,
        emit_distribution_parameters: bool = False,
    ):
        if isinstance(observation_space, TimeStep):
            observation_space = observation_space.observation
        if observation_space is not None and not isinstance(observation_space, gym.spaces.Box):
            raise TypeError(f"policies take Box observation spaces, got {observation_space}")
        if not isinstance(action_space, gym.spaces.Box | gym.spaces.Discrete):
            raise TypeError(f"policies act in Box or Discrete action spaces, got {action_space}")
        self._observation_space = observation_space
        self._uint8_observations = observation_space is not None and observation_dtype(
            observation_space.dtype
        ) == np.dtype(np.uint8)  # worked out once: a dtype comparison costs a small call 2%
        self._action_space = action_space
        if isinstance(action_space, gym.spaces.Box):
            self._action_bounds = (action_space.low.ravel().tolist(), action_space.high.ravel().tolist())
        self._rng = np.random.default_rng(seed)
        self.emit_log_probability = bool(emit_log_probability)
        self.emit_distribution_parameters = bool(emit_distribution_parameters)

    @property
    def observation_space(self) -> gym.spaces.Box | None:
        """None for a policy that ignores its observations."""
        return self._observation_space

    @property
    def action_space(self) -> gym.spaces.Box | gym.spaces.Discrete:
        return self._action_space

    @property
    def observation_spec(self) -> gym.spaces.Box | None:
        """TF-Agents' name for the observation space."""
        return self._observation_space

    @property
    def time_step_spec(self) -> TimeStep:
        """The spec of the `TimeStep`s this policy takes (time_step.time_step_spec)."""
        return time_step_spec(self._observation_space)

    @property
    def action_spec(self) -> gym.spaces.Box | gym.spaces.Discrete:
        """TF-Agents' name for the action space."""
        return self._action_space

    @property
    def policy_state_spec(self) -> tuple[tuple[tuple[int, ...], np.dtype], ...]:
        """(shape, dtype) of each state array for one observation; () for a stateless policy."""
        return tuple((np.shape(part)[1:], np.asarray(part).dtype) for part in self.get_initial_state(1))

    @property
    def info_spec(self) -> Mapping[str, Any]:
        """What `PolicyStep.info` holds for one observation, as (shape, dtype) pairs: nothing unless
        asked for; the parameters are read from the distribution of a zero observation."""
        spec: dict[str, Any] = {}
        if self.emit_log_probability:
            spec[LOG_PROBABILITY] = ((), np.dtype(np.float64))
        if self.emit_distribution_parameters:
            shape = (0,) if self._observation_space is None else self._observation_space.shape
            probe = self._distribution(np.zeros((1, *shape), np.float32), self.get_initial_state(1))
            spec[DIST_PARAMS] = {
                name: (np.shape(value)[1:], np.asarray(value).dtype)
                for name, value in probe.parameters().items()
            }
        return MappingProxyType(spec)

    def get_initial_state(self, batch_size: int | None = None) -> PolicyState:
        """The state to pass with the first observation of an episode; stateless policies use ()."""
        return ()

    def reset(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Forget anything carried between episodes (such as scripted progress)."""

    def action(
        self,
        observation: Any,
        state: PolicyState = (),
        mode: ActionMode | str = ActionMode.GREEDY,
        *,
        epsilon: float | None = None,
        seed: int | None = None,
    ) -> PolicyStep:
        """The action for one observation or a batch of observations.

        `seed` makes stochastic and epsilon-greedy choices reproducible for this call; without
        it the policy's own generator (seeded at construction) is used. `epsilon` is required
        in epsilon-greedy mode and is the probability of a uniformly random action.
        """
        observations, batched, state = self._check_input(observation, state)
        mode = mode if type(mode) is ActionMode else _parse_mode(mode)
        if mode is ActionMode.EPSILON_GREEDY:
            epsilon = _check_epsilon(epsilon)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        # Before acting: acting may advance what the distribution depends on (noise, a script).
        emits_info = self.emit_log_probability or self.emit_distribution_parameters
        distribution = self._distribution(observations, state) if emits_info else None
        step = self._action(observations, state, mode, rng)
        actions = step.action
        info = step.info if distribution is None else self._info(distribution, actions, step.info)
        if mode is ActionMode.EPSILON_GREEDY:
            actions = self._mix_with_random(actions, epsilon, rng)
        actions = self._clip(actions)
        if not batched:
            actions = actions[0]
            info = _first_row(info)
        return PolicyStep(actions, step.state, info)

    def distribution(self, observation: Any, state: PolicyState = ()) -> Distribution:
        """The action distribution for a batch of observations (a single one is batched)."""
        observations, _, state = self._check_input(observation, state)
        return self._distribution(observations, state)

    def _check_input(self, observation: Any, state: PolicyState) -> tuple[np.ndarray, bool, PolicyState]:
        """The float32 observation batch, whether it came batched, and the state to act with; a
        TimeStep gives its observation, and its FIRST rows start from the initial state."""
        step_type = None
        if isinstance(observation, tuple) and is_time_step(observation):  # arrays: decided here
            step_type, observation = observation.step_type, observation.observation
        if self._observation_space is None:
            observations, batched = _observations_of_batch(step_type)
        else:
            observations, batched = self._check_observation(observation)
        state = self._check_state(state, len(observations))
        if step_type is not None:
            first = _first_rows(step_type, len(observations))
            if state:
                state = self._restart_rows(state, first)
        return observations, batched, state

    def _restart_rows(self, state: PolicyState, first: np.ndarray) -> PolicyState:
        if not first.any():
            return state
        initial = self.get_initial_state(len(first))
        return tuple(
            np.where(first.reshape((-1,) + (1,) * (np.ndim(part) - 1)), start, part)
            for part, start in zip(state, initial, strict=True)
        )

    def _info(
        self, distribution: Distribution, actions: np.ndarray, info: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """`info` plus what this policy was asked to emit about `distribution` and `actions`."""
        emitted = dict(info)
        if self.emit_log_probability:
            try:
                emitted[LOG_PROBABILITY] = distribution.log_prob(actions)
            except NotImplementedError as error:
                raise ValueError(
                    f"emit_log_probability: {error}; build the policy without it, or with "
                    f"emit_distribution_parameters instead"
                ) from None
        if self.emit_distribution_parameters:
            emitted[DIST_PARAMS] = distribution.parameters()
        return MappingProxyType(emitted)

    def _check_state(self, state: PolicyState, batch_size: int) -> PolicyState:
        """The state to act with for `batch_size` observations; policies that keep one check it here."""
        return state

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        """Batched actions; the default acts from `_distribution` (epsilon-greedy starts greedy)."""
        distribution, next_state = self._distribution_and_state(observations, state)
        if mode is ActionMode.STOCHASTIC:
            return PolicyStep(distribution.sample(rng), next_state)
        return PolicyStep(distribution.mode(), next_state)

    def _distribution_and_state(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[Distribution, PolicyState]:
        """The action distribution and the state to pass with the next observations (recurrent
        policies advance it; the default passes it through)."""
        return self._distribution(observations, state), state

    @abc.abstractmethod
    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        """The action distribution for a validated batch of observations (float32; uint8 for
        uint8 spaces, see signatures.observation_dtype)."""

    def _check_observation(self, observation: Any) -> tuple[np.ndarray, bool]:
        """A float32 (uint8 for uint8 spaces) batch of observations, and whether the input was
        already batched."""
        space = self._observation_space
        try:
            array = np.asarray(observation)
        except (TypeError, ValueError) as error:
            raise ValueError(f"observation is not a numeric array ({error}); expected {space}") from None
        if array.dtype.kind not in "fiub":
            raise ValueError(f"observation has dtype {array.dtype}; expected numbers for {space}")
        if array.shape == space.shape:
            batched, array = False, array[None]
        elif array.ndim == len(space.shape) + 1 and array.shape[1:] == space.shape:
            batched = True
        else:
            raise ValueError(
                f"observation has shape {array.shape}; expected {space.shape} or a batch (N, *{space.shape})"
            )
        if array.shape[0] == 0:
            raise ValueError(
                f"observation batch is empty; expected at least one observation of shape {space.shape}"
            )
        if self._uint8_observations:
            return _as_uint8(array, space), batched
        if array.dtype is not FLOAT32:  # see FLOAT32
            array = array.astype(FLOAT32, copy=False)
        if not all_finite(array):
            raise ValueError(
                f"observation contains NaN or infinite values; expected finite values for {space}"
            )
        return array, batched

    def _mix_with_random(self, actions: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        explore = rng.random(len(actions)) < epsilon
        if not explore.any():
            return actions
        random_actions = uniform_actions(self._action_space, len(actions), rng)
        return np.where(explore.reshape((-1,) + (1,) * (actions.ndim - 1)), random_actions, actions)

    def _clip(self, actions: np.ndarray) -> np.ndarray:
        space = self._action_space
        if isinstance(space, gym.spaces.Discrete):
            return actions if actions.dtype is INT64 else actions.astype(INT64, copy=False)
        if within_bounds(actions, *self._action_bounds):  # usually so, and then no ufunc is needed
            return actions if actions.dtype is space.dtype else actions.astype(space.dtype, copy=False)
        # minimum/maximum rather than np.clip: same result, a third of the overhead on small arrays.
        return np.minimum(np.maximum(actions, space.low), space.high).astype(space.dtype, copy=False)


def _observations_of_batch(step_type: Any) -> tuple[np.ndarray, bool]:
    """Empty observations for a policy that ignores them: a TimeStep's step_type gives the batch."""
    shape = np.shape(step_type) if step_type is not None else ()
    if len(shape) > 1 or shape == (0,):
        raise ValueError(f"step_type has shape {shape}; expected () or a non-empty batch (N,)")
    return np.zeros((shape[0] if shape else 1, 0), np.float32), bool(shape)


def _first_rows(step_type: Any, batch_size: int) -> np.ndarray:
    first = np.asarray(step_type) == StepType.FIRST
    if first.shape not in ((), (batch_size,)):
        raise ValueError(
            f"step_type has shape {first.shape}; expected () or ({batch_size},), one per observation"
        )
    return np.broadcast_to(first, (batch_size,))


def _first_row(info: Mapping[str, Any]) -> Mapping[str, Any]:
    """`info` of a batch of one as the info of a single observation."""
    if not info:
        return info
    return MappingProxyType(
        {
            key: {name: value[0] for name, value in part.items()} if isinstance(part, Mapping) else part[0]
            for key, part in info.items()
        }
    )


def recurrent_state_spec(units: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], np.dtype], ...]:
    """The `policy_state_spec` of a recurrent policy whose state parts have `units` values each."""
    return tuple(((size,), np.dtype(np.float32)) for size in units)


def zero_state(spec: tuple[tuple[tuple[int, ...], np.dtype], ...], batch_size: int | None) -> PolicyState:
    """The state that starts an episode: zeros for `batch_size` observations (one when None)."""
    return tuple(np.zeros((batch_size or 1, *shape), dtype) for shape, dtype in spec)


def check_recurrent_state(
    state: Any, spec: tuple[tuple[tuple[int, ...], np.dtype], ...], batch_size: int
) -> PolicyState:
    """`state` as float32 arrays (batch_size, *shape) per part of `spec`, or ValueError naming the problem.

    A single observation takes a state for a batch of one.
    """
    expected = ", ".join(f"({batch_size}, {', '.join(map(str, shape))})" for shape, _ in spec)
    advice = f"pass get_initial_state({batch_size}) at an episode start, then each PolicyStep.state"
    if not isinstance(state, tuple | list) or len(state) != len(spec):
        is_sequence = isinstance(state, tuple | list)
        described = (
            f"{type(state).__name__} of {len(state)} parts" if is_sequence else f"a {type(state).__name__}"
        )
        raise ValueError(
            f"policy state is {described}; this recurrent policy takes a tuple of {len(spec)} float32 "
            f"arrays shaped {expected}: {advice}"
        )
    arrays = []
    for index, (part, (shape, _)) in enumerate(zip(state, spec, strict=True)):
        array = np.asarray(part) if isinstance(part, np.ndarray | list | tuple | float | int) else None
        if array is None or array.dtype.kind not in "fiu":
            raise ValueError(
                f"policy state part {index} is a {type(part).__name__}, not a numeric array; "
                f"expected shapes {expected}: {advice}"
            )
        if array.shape != (batch_size, *shape):
            raise ValueError(
                f"policy state part {index} has shape {array.shape}; expected {expected} "
                f"for {batch_size} observation(s): {advice}"
            )
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise ValueError(f"policy state part {index} contains NaN or infinite values")
        arrays.append(array)
    return tuple(arrays)


def uniform_actions(
    space: gym.spaces.Box | gym.spaces.Discrete, count: int, rng: np.random.Generator
) -> np.ndarray:
    """`count` actions drawn uniformly from a bounded action space with `rng`."""
    if isinstance(space, gym.spaces.Discrete):
        return space.start + rng.integers(space.n, size=count, dtype=np.int64)
    if not space.is_bounded("both"):
        raise ValueError(f"uniform actions need a bounded action space, got {space}")
    if np.issubdtype(space.dtype, np.integer):
        # Every integer of the inclusive range equally often; a truncated float would skip the bounds.
        return rng.integers(
            space.low, space.high, size=(count, *space.shape), endpoint=True, dtype=space.dtype
        )
    return rng.uniform(space.low, space.high, size=(count, *space.shape)).astype(space.dtype)


_MODES = {mode.value: mode for mode in ActionMode}  # a dict lookup: an Enum call is dear per action


def _parse_mode(mode: ActionMode | str) -> ActionMode:
    parsed = _MODES.get(mode) if isinstance(mode, str) else None
    if parsed is None:
        choices = ", ".join(m.value for m in ActionMode)
        raise ValueError(f"unknown action mode {mode!r}; expected one of: {choices}")
    return parsed


def _check_epsilon(epsilon: float | None) -> float:
    if epsilon is None or not np.isfinite(epsilon) or not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon-greedy mode needs epsilon in [0, 1], got {epsilon!r}")
    return float(epsilon)


def _as_uint8(array: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """`array` as uint8, refusing values a uint8 frame cannot hold instead of wrapping them."""
    if array.dtype == np.uint8:
        return array
    if array.size and not (np.all(array >= 0) and np.all(array <= 255) and np.all(array == np.round(array))):
        raise ValueError(
            f"observation holds values that are not integers 0..255; expected uint8 frames of {space}"
        )
    return array.astype(np.uint8)
