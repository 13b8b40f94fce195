"""The standard `grpc.health.v1.Health`, answered without a bearer token.

Load balancers and orchestrators probe the server without the secret; the answers reveal only
whether the server ("") and each policy name are serving. The server owns the servicer and sets
its statuses as policies load, fail and shut down.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gymserve.serving.apis.protocol import Protocol, ProtocolContext, rpcs_of


def register(server: grpc.Server, context: ProtocolContext) -> None:
    health_pb2_grpc.add_HealthServicer_to_server(context.health, server)


PROTOCOL = Protocol(
    name="health",
    rpcs=rpcs_of(health_pb2.DESCRIPTOR.services_by_name["Health"], public=True),
    register=register,
    reflected_services=(health.SERVICE_NAME,),
)
