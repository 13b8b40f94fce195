"""The protocols the policy server speaks, each registered by one line in `PROTOCOLS` (gRPC) or
`HTTP_PROTOCOLS` (the HTTP port, when one is configured).

protocol.py         what a gRPC protocol module defines, `PROTOCOL = Protocol(...)`: see
                    docs/adding_a_protocol.md
http_protocol.py    what an HTTP protocol module defines: `PROTOCOL = HttpProtocol(...)`; json_tensors.py
policy_service.py   gymserve's own `gymserve.serving.v1.PolicyService`
health.py           the standard `grpc.health.v1.Health`, answered without a token
tf_serving/         TensorFlow Serving: `PredictionService` over gRPC (grpc_protocol.py, loaded at its
                    first call, skipped without tensorflow-serving-api) and REST (rest_protocol.py)
open_inference/     the Open Inference Protocol (KServe v2, Triton) over gRPC (grpc_protocol.py) and
                    REST (rest_protocol.py), one semantics for both (core.py)
browser_page/       a page on the HTTP port: the policies, their traffic and a CartPole game played
                    by a served policy (protocol.py, and the page's files in static/)
inference/          the modules generated from protos/inference/grpc_service.proto

Entries are "module:attribute" strings, so importing this package imports no protocol, and a
protocol whose module needs a missing optional package is skipped rather than failing the server.
"""

PROTOCOLS = [
    "gymserve.serving.apis.policy_service:PROTOCOL",
    "gymserve.serving.apis.health:PROTOCOL",
    "gymserve.serving.apis.tf_serving.grpc_protocol:PROTOCOL",
    "gymserve.serving.apis.open_inference.grpc_protocol:PROTOCOL",
]

HTTP_PROTOCOLS = [
    "gymserve.serving.apis.tf_serving.rest_protocol:PROTOCOL",
    "gymserve.serving.apis.open_inference.rest_protocol:PROTOCOL",
    "gymserve.serving.apis.browser_page.protocol:PROTOCOL",
]
