"""The protocols the policy server speaks, one module each, registered in `PROTOCOLS`.

protocol.py         what a protocol module defines: `PROTOCOL = Protocol(...)` (docs/adding_a_protocol.md)
policy_service.py   gymserve's own `gymserve.serving.v1.PolicyService`
health.py           the standard `grpc.health.v1.Health`, answered without a token
tf_serving.py       TensorFlow Serving's `PredictionService` (tf_prediction_service.py, tensor_protos.py),
                    loaded at its first call; skipped when tensorflow-serving-api is not installed
open_inference.py   the Open Inference Protocol's `inference.GRPCInferenceService` (KServe v2, Triton;
                    oip_tensors.py converts its tensors), messages generated into inference/

HTTP_PROTOCOLS, answered on the HTTP port when one is configured (see http_protocol.py):
tf_serving_rest.py      TensorFlow Serving's REST API (/v1/models/...)
open_inference_rest.py  the Open Inference Protocol's REST API (/v2/...)

Entries are "module:attribute" strings, so importing this package imports no protocol, and a
protocol whose module needs a missing optional package is skipped rather than failing the server.
"""

PROTOCOLS = [
    "gymserve.serving.apis.policy_service:PROTOCOL",
    "gymserve.serving.apis.health:PROTOCOL",
    "gymserve.serving.apis.tf_serving:PROTOCOL",
    "gymserve.serving.apis.open_inference:PROTOCOL",
]

HTTP_PROTOCOLS = [
    "gymserve.serving.apis.tf_serving_rest:PROTOCOL",
    "gymserve.serving.apis.open_inference_rest:PROTOCOL",
]
