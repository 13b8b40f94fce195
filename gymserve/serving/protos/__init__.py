"""Generated protobuf and gRPC modules of the policy service (`gymserve.serving.v1`).

The modules live beside their .proto file; regenerate them with
`python -m gymserve.serving.protos.generate`.
"""

from gymserve.serving.protos.gymserve.serving.v1 import policy_service_pb2, policy_service_pb2_grpc

SERVICE_NAME = policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name

__all__ = ["SERVICE_NAME", "policy_service_pb2", "policy_service_pb2_grpc"]
