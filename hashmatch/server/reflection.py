"""Server reflection under both names clients use: grpc.reflection.v1 and v1alpha.

grpcio-reflection serves only v1alpha; v1 (what grpcurl >= 1.9, Postman and newer gRPC
tools ask first) has byte-identical messages, so the same servicer answers both: the v1
method is registered with v1alpha's message (de)serializers.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as messages

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME


def enable_reflection(server: grpc.aio.Server, services: Sequence[str]) -> None:
    """Reflection for `services`, plus both reflection services themselves."""
    servicer = reflection.aio.ReflectionServicer([*services, V1_SERVICE, V1ALPHA_SERVICE])
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=messages.ServerReflectionRequest.FromString,
        response_serializer=messages.ServerReflectionResponse.SerializeToString,
    )
    for name in (V1_SERVICE, V1ALPHA_SERVICE):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}),)
        )
