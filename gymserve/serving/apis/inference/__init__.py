"""Generated modules of the Open Inference Protocol's `inference/grpc_service.proto` (`package inference`)."""
