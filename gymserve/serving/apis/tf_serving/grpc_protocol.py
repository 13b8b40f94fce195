"""TensorFlow Serving's `PredictionService` on the policy server, loaded at its first call.

Its messages come from tensorflow-serving-api, which imports TensorFlow (seconds, and about
half a GiB): a server that never gets a TensorFlow Serving call never pays that, and the
first such call does, once. Start-up only checks that the package is installed, and the
server skips this protocol when it is not. The service itself is
`prediction_service.PredictionService`. Server reflection does not list it: describing it
would need its messages, and so TensorFlow.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import grpc

from gymserve.serving.apis.protocol import Protocol, ProtocolContext, Rpc

SERVICE_NAME = "tensorflow.serving.PredictionService"
_REQUESTS = {
    "Predict": ("predict_pb2", "PredictRequest"),
    "GetModelMetadata": ("get_model_metadata_pb2", "GetModelMetadataRequest"),
}


def register(server: grpc.Server, context: ProtocolContext) -> None:
    """Predict and GetModelMetadata of `SERVICE_NAME`, answered through the server's policy calls."""

    @functools.cache
    def service() -> Any:
        from gymserve.serving.apis.tf_serving.prediction_service import PredictionService

        return PredictionService(context.calls)

    def behavior(method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        return lambda request, call: getattr(service(), method)(request, call)

    def parser(module: str, message: str) -> Callable[[bytes], Any]:
        def parse(raw: bytes) -> Any:
            return getattr(importlib.import_module(f"tensorflow_serving.apis.{module}"), message).FromString(
                raw
            )

        return parse

    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            behavior(method), request_deserializer=parser(*request), response_serializer=_serialize
        )
        for method, request in _REQUESTS.items()
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)])


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


PROTOCOL = Protocol(
    name="tf_serving",
    rpcs=tuple(Rpc(f"/{SERVICE_NAME}/{method}") for method in _REQUESTS),
    register=register,
    requires=("tensorflow_serving", "tensorflow"),
)
