"""TensorFlow Serving's API on the policy server: `PredictionService` over gRPC and its REST form.

grpc_protocol.py       the gRPC protocol hook; prediction_service.py answers Predict and GetModelMetadata
rest_protocol.py       /v1/models/NAME[/versions/N|/labels/L][:predict|/metadata] on the HTTP port
signatures.py          the signatures both answer (serving_default, greedy/stochastic actions, distribution)
tensor_protos.py       numpy arrays to and from `TensorProto`, sizes checked before anything is built
"""
