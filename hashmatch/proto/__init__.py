"""Generated protobuf/gRPC modules for hashmatch.v1 (tools/gen_proto.py writes them)."""

from hashmatch.proto.hashmatch.v1 import admin_pb2 as admin_pb
from hashmatch.proto.hashmatch.v1 import admin_pb2_grpc as admin_rpc
from hashmatch.proto.hashmatch.v1 import bank_pb2 as bank_pb
from hashmatch.proto.hashmatch.v1 import bank_pb2_grpc as bank_rpc
from hashmatch.proto.hashmatch.v1 import exchange_pb2 as exchange_pb
from hashmatch.proto.hashmatch.v1 import exchange_pb2_grpc as exchange_rpc
from hashmatch.proto.hashmatch.v1 import match_pb2 as pb
from hashmatch.proto.hashmatch.v1 import match_pb2_grpc as rpc
from hashmatch.proto.hashmatch.v1 import report_pb2 as report_pb
from hashmatch.proto.hashmatch.v1 import report_pb2_grpc as report_rpc
from hashmatch.proto.hashmatch.v1 import video_pb2 as video_pb
from hashmatch.proto.hashmatch.v1 import video_pb2_grpc as video_rpc

__all__ = [
    "admin_pb",
    "admin_rpc",
    "bank_pb",
    "bank_rpc",
    "exchange_pb",
    "exchange_rpc",
    "pb",
    "report_pb",
    "report_rpc",
    "rpc",
    "video_pb",
    "video_rpc",
]
