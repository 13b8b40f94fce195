"""The Open Inference Protocol (KServe v2), as Triton, KServe and `tritonclient` speak it.

core.py            the semantics both transports share: parameters (mode, epsilon, seed), inputs,
                   outputs, metadata and datatypes
grpc_protocol.py   `inference.GRPCInferenceService` over gRPC (grpc_tensors.py: typed and raw tensors)
rest_protocol.py   /v2/... on the HTTP port, JSON tensors
"""
