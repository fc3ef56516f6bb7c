"""Generated protobuf/gRPC modules for hashmatch.v1 (tools/gen_proto.py writes them)."""

from hashmatch.proto.hashmatch.v1 import match_pb2 as pb
from hashmatch.proto.hashmatch.v1 import match_pb2_grpc as rpc

__all__ = ["pb", "rpc"]
