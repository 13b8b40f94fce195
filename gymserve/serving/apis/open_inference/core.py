"""What the Open Inference Protocol means on gymserve, whichever transport carries it.

gRPC (`grpc_protocol`) and HTTP/JSON (`rest_protocol`) decode their messages into
plain Python values and numpy arrays and hand them to this module, so both name inputs and
outputs alike, choose actions from the same parameters, refuse the same mistakes with the
same messages and describe a model the same way. Request `parameters` choose the action:

    mode      string  "greedy" (default), "stochastic", "epsilon_greedy" (or "epsilon")
    epsilon   number  the exploration rate of "epsilon_greedy"
    seed      integer >= 0: a stochastic draw equal to gymserve Act's with the same seed
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies import ActionMode
from gymserve.policies.signatures import (
    ACTION,
    OBSERVATIONS,
    SEED,
    next_state_name,
    observation_dtype,
    state_name,
)
from gymserve.serving.server.echo import echo, echo_all
from gymserve.serving.server.request_limits import MAX_RANK

if TYPE_CHECKING:
    import gymnasium as gym

    from gymserve.policies import Policy
    from gymserve.serving.server.request_limits import RequestBudget

PLATFORM = "gymserve"
MODE = "mode"
EPSILON = "epsilon"
MODES = {
    "greedy": ActionMode.GREEDY,
    "stochastic": ActionMode.STOCHASTIC,
    "epsilon_greedy": ActionMode.EPSILON_GREEDY,
    "epsilon": ActionMode.EPSILON_GREEDY,
}
PARAMETERS = (MODE, EPSILON, SEED)

# data type name -> numpy dtype (little-endian); BYTES is not served: no policy input or output is a string
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPE_OF: dict[np.dtype, str] = {dtype: name for name, dtype in DATATYPES.items()}


@dataclass(frozen=True)
class ActionChoice:
    """How inference picks actions, from the request's parameters."""

    mode: ActionMode
    epsilon: float | None
    seed: int | None


GREEDY = ActionChoice(ActionMode.GREEDY, None, None)  # what a request without parameters asks


@dataclass(frozen=True)
class TensorMetadata:
    """One input or output of a model: its name, data type and shape (-1: any batch size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


def action_choice(parameters: Mapping[str, object]) -> ActionChoice:
    """The action mode, epsilon and seed of a request's `parameters`, given as plain Python values."""
    if not parameters:
        return GREEDY
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter {echo_all(unknown)}; parameters: {', '.join(PARAMETERS)}")
    mode = parameters.get(MODE)
    if mode is not None and (not isinstance(mode, str) or mode not in MODES):
        shown = echo(mode) if isinstance(mode, str) else _kind(mode)
        raise ValueError(f"parameter mode is {shown}; expected one of {', '.join(MODES)}")
    epsilon = parameters.get(EPSILON)
    if epsilon is not None and not _is_number(epsilon):
        raise ValueError(f"parameter epsilon is {_kind(epsilon)}; expected a number")
    seed = parameters.get(SEED)
    if seed is not None and not _is_integer(seed):
        raise ValueError(f"parameter seed is {_kind(seed)}; expected an integer >= 0")
    if seed is not None and seed < 0:
        raise ValueError(f"parameter seed is {seed}; expected an integer >= 0")
    return ActionChoice(
        MODES[mode] if mode is not None else ActionMode.GREEDY,
        None if epsilon is None else float(epsilon),
        None if seed is None else int(seed),
    )


def input_names(policy: Policy) -> list[str]:
    """The inputs inference takes: observations and the policy's state parts."""
    return [OBSERVATIONS, *(state_name(i) for i in range(len(policy.policy_state_spec)))]


def check_input_name(name: str, known: Sequence[str], seen: Mapping[str, object]) -> None:
    """ValueError unless `name` is one of `known` and not among the inputs `seen` so far."""
    if name not in known or name in seen:
        raise ValueError(f"input {echo(name)} is unknown or repeated; model inputs: {', '.join(known)}")


def observation_datatype(policy: Policy) -> str:
    """The datatype `policy` declares for observations: UINT8 for image frames, FP32 otherwise."""
    return _observation_datatype(policy.observation_space.dtype)


@functools.cache  # every call's check asks; working it out again took 5% of a small call's server CPU
def _observation_datatype(space_dtype: np.dtype) -> str:
    return datatype_of(np.empty(0, observation_dtype(space_dtype)))


def check_observations(datatype: str, shape: tuple[int, ...], space: gym.spaces.Box) -> None:
    """ValueError unless observations are FP32 (or the declared UINT8) of shape [batch, *the
    observation space's shape]."""
    declared = _observation_datatype(space.dtype)
    if datatype not in ("FP32", declared) or shape[1:] != space.shape or not shape:
        raise ValueError(
            f"input {OBSERVATIONS} is {echo(datatype)} of shape {list(shape)}; "
            f"expected {declared} of shape [batch, {', '.join(map(str, space.shape))}] for {space}"
        )


def check_state_inputs(state_inputs: Mapping[str, np.ndarray], policy: Policy) -> None:
    """ValueError when the request gives some state parts but not all of them."""
    state_names = input_names(policy)[1:]
    missing = [name for name in state_names if name not in state_inputs]
    if missing and len(missing) != len(state_names):
        raise ValueError(f"the request gives part of the state; missing: {', '.join(missing)}")


def infer(
    policy: Policy,
    observations: np.ndarray,
    state_inputs: Mapping[str, np.ndarray],
    choice: ActionChoice,
    wanted: Sequence[str],
) -> dict[str, np.ndarray]:
    """Every output inference can give that `wanted` needs: the action, next state, distribution."""
    state_parts = len(policy.policy_state_spec)
    if state_inputs:
        state = tuple(state_inputs[state_name(i)] for i in range(state_parts))
    else:
        state = policy.get_initial_state(len(observations)) if state_parts else ()
    step = policy.action(observations, state, choice.mode, epsilon=choice.epsilon, seed=choice.seed)
    outputs = {ACTION: step.action}
    if state_parts:
        next_states = [next_state_name(i) for i in range(state_parts)]
        outputs.update(zip(next_states, step.state, strict=True))
    if not all(map(outputs.__contains__, wanted)):
        outputs.update(policy.distribution(observations, state).parameters())
    return outputs


def wanted_outputs(requested: Sequence[str], policy: Policy) -> list[str]:
    """The outputs a request names, or by default the action and the next state."""
    return list(requested) or [ACTION, *map(next_state_name, range(len(policy.policy_state_spec)))]


def select_outputs(outputs: Mapping[str, np.ndarray], wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """The `wanted` outputs in the order asked; ValueError naming any the model does not give."""
    selected = {}
    try:
        for name in wanted:  # a loop, not a comprehension: no function of its own to call
            selected[name] = np.asarray(outputs[name])
    except KeyError:
        unknown = [name for name in wanted if name not in outputs]
        raise ValueError(f"no output {echo_all(unknown)}; model outputs: {', '.join(outputs)}") from None
    return selected


def describe(policy: Policy) -> tuple[list[TensorMetadata], list[TensorMetadata]]:
    """The inputs and outputs inference takes and gives for `policy`, from one call on a sample."""
    space = policy.observation_space
    sample = np.zeros((1, *space.shape), np.float32).clip(space.low, space.high)
    state = policy.get_initial_state(1)
    step = policy.action(sample, state)
    inputs = [TensorMetadata(OBSERVATIONS, observation_datatype(policy), (-1, *space.shape))]
    outputs = {ACTION: step.action, **policy.distribution(sample, state).parameters()}
    for i, part in enumerate(state):
        inputs.append(_metadata(state_name(i), part))
        outputs[next_state_name(i)] = part
    return inputs, [_metadata(name, array) for name, array in outputs.items()]


def numpy_dtype(datatype: str, what: str) -> np.dtype:
    """The dtype of data type name `datatype`; ValueError naming `what` and the served ones otherwise."""
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"{what} has datatype {echo(datatype)}; expected one of {', '.join(DATATYPES)}")
    return dtype


def datatype_of(array: np.ndarray) -> str:
    """The data type name of `array`'s dtype (taken as little-endian)."""
    name = _DATATYPE_OF.get(array.dtype)  # a native little-endian dtype: the usual case
    if name is None and array.dtype.itemsize > 1:
        name = _DATATYPE_OF.get(array.dtype.newbyteorder("<"))
    if name is None:
        raise ValueError(f"arrays of dtype {array.dtype} have no Open Inference Protocol data type")
    return name


def declared_shape(
    datatype: str, shape: Sequence[int], what: str, budget: RequestBudget, max_rank: int = MAX_RANK
) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an input declares, once they fit the request's budget."""
    dtype = numpy_dtype(datatype, what)
    return dtype, budget.take(len(shape), shape, dtype.itemsize, what, max_rank)


def _metadata(name: str, array: object) -> TensorMetadata:
    array = np.asarray(array)
    return TensorMetadata(name, datatype_of(array), (-1, *array.shape[1:]))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    return f"of type {type(value).__name__}"
