"""The robot's side of serving: the gRPC client and what it puts on the wire.

It imports only numpy, grpcio and protobuf, never TensorFlow or the server (`RemotePolicy`, a
gymserve Policy, also needs gymnasium and is loaded on first use):

policy_client.py   PolicyClient: Act, StreamAct sessions, policy metadata, health
remote_policy.py   RemotePolicy: a served policy usable wherever a local Policy is
control_loop.py    ControlLoop: a policy at a fixed rate that never waits past a deadline
spaces.py, tensors.py, action_modes.py   spaces, arrays and action modes on the wire
protos.py          the generated `gymserve.serving.v1` modules
"""

from typing import Any

from gymserve.common.moved_modules import moved_names
from gymserve.serving.client.control_loop import ControlLoop, ControlLoopStats
from gymserve.serving.client.policy_client import (
    ActResult,
    PolicyClient,
    PolicyInfo,
    PolicyServiceError,
    PolicySummary,
    PolicyVersionInfo,
    StreamSession,
)
from gymserve.serving.client.spaces import WireSpace

__all__ = [
    "ActResult",
    "ControlLoop",
    "ControlLoopStats",
    "PolicyClient",
    "PolicyInfo",
    "PolicyServiceError",
    "PolicySummary",
    "PolicyVersionInfo",
    "StreamSession",
    "WireSpace",
]


_moved_names = moved_names(
    __name__,
    "gymserve.serving.client.policy_client",
    frozenset({"DEFAULT_TIMEOUT", "DEFAULT_MAX_MESSAGE_BYTES", "act_request"}),
)


def __getattr__(name: str) -> Any:
    # RemotePolicy is a gymserve Policy, which needs gymnasium; the bare client does not. The other
    # names of the module this package replaced still import, with a warning.
    if name == "RemotePolicy":
        from gymserve.serving.client.remote_policy import RemotePolicy

        return RemotePolicy
    return _moved_names(name)
