"""Python clients for a hashmatch server: images (blocking and asyncio), video, and the
remote matchers a bulk scan uses. Only gRPC, protobuf and NumPy are needed."""

from hashmatch.client.aio import AsyncClient
from hashmatch.client.blocking import Client
from hashmatch.client.images import ItemOutcome, auth_metadata

__all__ = ["AsyncClient", "Client", "ItemOutcome", "auth_metadata"]
