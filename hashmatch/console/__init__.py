"""The operator console: server-rendered pages over the same core as gRPC and REST."""
