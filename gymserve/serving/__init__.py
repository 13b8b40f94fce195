"""Serving policies over gRPC: the server, its Python client, and a Policy that acts remotely.

Importing this package loads only the client, which needs grpcio, protobuf and numpy:

    from gymserve.serving import PolicyClient                    # a robot's minimal install
    from gymserve.serving.client import RemotePolicy             # a Policy backed by a server
    from gymserve.serving.server import PolicyServer             # the server (the serve extra)
    from gymserve.serving.server.config import ServerConfig, load_server_config
"""

from gymserve.serving.client import (
    ActResult,
    ControlLoop,
    ControlLoopStats,
    PolicyClient,
    PolicyInfo,
    PolicyServiceError,
    PolicySummary,
    PolicyVersionInfo,
    StreamSession,
    WireSpace,
)

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
