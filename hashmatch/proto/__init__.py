"""Generated protobuf/gRPC modules for hashmatch.v1."""
