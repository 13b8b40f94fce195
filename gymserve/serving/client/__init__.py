"""The robot's side of serving: the gRPC client and what it puts on the wire.

It imports only numpy, grpcio and protobuf (and gymnasium for spaces), never TensorFlow or the
server:

policy_client.py   PolicyClient: Act, StreamAct sessions, policy metadata, health
remote_policy.py   RemotePolicy: a served policy usable wherever a local Policy is
spaces.py, tensors.py, action_modes.py   spaces, arrays and action modes on the wire
protos.py          the generated `gymserve.serving.v1` modules
"""

from gymserve.serving.client.policy_client import (
    ActResult,
    PolicyClient,
    PolicyInfo,
    PolicyServiceError,
    PolicySummary,
    PolicyVersionInfo,
    StreamSession,
)
from gymserve.serving.client.remote_policy import RemotePolicy
from gymserve.serving.client.spaces import WireSpace

__all__ = [
    "ActResult",
    "PolicyClient",
    "PolicyInfo",
    "PolicyServiceError",
    "PolicySummary",
    "PolicyVersionInfo",
    "RemotePolicy",
    "StreamSession",
    "WireSpace",
]
