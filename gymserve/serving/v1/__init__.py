"""Generated protobuf and gRPC modules of the `gymserve.serving.v1` protocol (see `protos/`)."""
