"""The policy service protocol (`gymserve.serving.v1`) as generated Python modules.

Its source of truth is the repository's `protos/gymserve/serving/v1/policy_service.proto`; the
modules are generated into `gymserve.serving.v1` by `python -m tools.generate_protos`.
"""

from gymserve.serving.v1 import policy_service_pb2, policy_service_pb2_grpc

SERVICE_NAME = policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name

__all__ = ["SERVICE_NAME", "policy_service_pb2", "policy_service_pb2_grpc"]
