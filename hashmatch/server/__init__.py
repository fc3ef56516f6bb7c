"""The gRPC service (grpc.aio) over the engine and the index."""
