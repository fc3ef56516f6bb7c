"""What both image clients (blocking and asyncio) share: the outcome type, the channel
options, and the requests a call is cut into.

Batching helpers split long inputs into requests of `batch_size`; streaming helpers keep
one MatchStream open. Calls are retried on UNAVAILABLE by gRPC's own retry policy, and
spread round-robin over every address the target names or resolves to (replicas behind
one DNS name, or `ipv4:10.0.0.1:50051,10.0.0.2:50051`): a replica that goes away costs
the calls it held one retry on another.
Results are `ItemOutcome`s: hex at this edge, since this is what callers print and store.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hashmatch.proto import pb

DEFAULT_TARGET = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 80 * 1024 * 1024

_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "hashmatch.v1.MatchService"}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


@dataclass(frozen=True)
class ItemOutcome:
    content_id: str
    code: str
    message: str
    photodna_code: int
    tracking_id: str
    is_match: bool = False
    pdq: str = ""
    quality: int = 0
    md5: str = ""
    sha256: str = ""
    pdq_dihedral: tuple[str, ...] = ()
    matches: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @classmethod
    def from_proto(cls, r: pb.ItemResult) -> ItemOutcome:
        s = r.signatures
        return cls(
            content_id=r.content_id,
            code=pb.ItemCode.Name(r.status.code),
            message=r.status.message,
            photodna_code=r.status.photodna_code,
            tracking_id=r.tracking_id,
            is_match=r.is_match,
            pdq=s.pdq.hex(),
            quality=s.quality,
            md5=s.md5.hex(),
            sha256=s.sha256.hex(),
            pdq_dihedral=tuple(h.hex() for h in s.pdq_dihedral),
            matches=tuple(
                {
                    "bank": m.bank,
                    "entry_id": m.entry_id,
                    "label": m.label,
                    "distance": m.distance,
                    "signal_type": pb.SignalType.Name(m.signal_type).lower(),
                    "variant": m.variant,
                    **({"source": m.source} if m.source else {}),
                    **({"value": m.value.hex()} if m.value else {}),
                }
                for m in r.matches
            ),
        )

    def to_json(self) -> dict[str, Any]:
        if not self.ok:
            return {
                "content_id": self.content_id,
                "error": {"code": self.code, "message": self.message},
                "tracking_id": self.tracking_id,
            }
        out: dict[str, Any] = {"content_id": self.content_id, "is_match": self.is_match}
        if self.pdq:
            out.update(pdq=self.pdq, quality=self.quality, md5=self.md5, sha256=self.sha256)
        if self.pdq_dihedral:
            out["pdq_dihedral"] = list(self.pdq_dihedral)
        out["matches"] = list(self.matches)
        out["tracking_id"] = self.tracking_id
        return out


def options(
    banks: Sequence[str], max_distance: int, dihedral: bool, test: bool = False
) -> pb.MatchOptions:
    return pb.MatchOptions(
        banks=list(banks), max_distance=max_distance, dihedral=dihedral, test=test
    )


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata that carries an API key (PhotoDNA clients may send the same key as
    `ocp-apim-subscription-key` instead)."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
    ]


def _hash_query(value: str | bytes, content_id: str) -> pb.HashQuery:
    """A hex string (or packed bytes): 32 hex digits / 16 bytes are MD5, else PDQ;
    `sha256:HEX` / `md5:HEX` / `pdq:HEX` name the type."""
    kind = ""
    if isinstance(value, str):
        kind, sep, rest = value.strip().partition(":")
        if not sep:
            kind, rest = "", kind
        try:
            raw = bytes.fromhex(rest)
        except ValueError:
            raw = rest.encode()  # the server reports the bad value per item
    else:
        raw = value
    types = {"pdq": pb.PDQ, "md5": pb.MD5, "sha256": pb.SHA256}
    signal = types.get(kind.lower(), pb.MD5 if len(raw) == 16 else pb.PDQ)
    return pb.HashQuery(content_id=content_id, signal_type=signal, value=raw)


def _ids(n: int, content_ids: Sequence[str] | None) -> list[str]:
    return list(content_ids) if content_ids is not None else [str(k) for k in range(n)]


def match_requests(
    images: Sequence[bytes],
    content_ids: Sequence[str] | None,
    options: pb.MatchOptions,
    batch_size: int,
) -> Iterator[pb.MatchImagesRequest]:
    ids = _ids(len(images), content_ids)
    for lo in range(0, len(images), batch_size):
        part = range(lo, min(lo + batch_size, len(images)))
        yield pb.MatchImagesRequest(
            images=[pb.Image(content_id=ids[k], data=images[k]) for k in part], options=options
        )


def hash_requests(
    images: Sequence[bytes], dihedral: bool, batch_size: int
) -> Iterator[pb.HashImagesRequest]:
    for lo in range(0, len(images), batch_size):
        part = range(lo, min(lo + batch_size, len(images)))
        yield pb.HashImagesRequest(
            images=[pb.Image(content_id=str(k), data=images[k]) for k in part], dihedral=dihedral
        )


def hashes_requests(
    hashes: Sequence[str | bytes], options: pb.MatchOptions, batch_size: int
) -> Iterator[pb.MatchHashesRequest]:
    for lo in range(0, len(hashes), batch_size):
        part = range(lo, min(lo + batch_size, len(hashes)))
        yield pb.MatchHashesRequest(
            hashes=[_hash_query(hashes[k], str(k)) for k in part], options=options
        )


def stream_request(
    content_id: str, data: bytes, options: pb.MatchOptions | None
) -> pb.MatchStreamRequest:
    req = pb.MatchStreamRequest(image=pb.Image(content_id=content_id, data=data))
    if options is not None:  # the first message's options hold for the stream
        req.options.CopyFrom(options)
    return req


def stream_requests(
    images: Iterable[tuple[str, bytes]], options: pb.MatchOptions, per_message: int
) -> Iterator[pb.MatchStreamRequest]:
    """A stream's messages: one image each, or up to per_message images a message (fewer
    messages, so less CPU per image on both sides; the server answers in groups then)."""
    it = iter(images)
    first = True
    if per_message <= 1:
        for cid, data in it:
            yield stream_request(cid, data, options if first else None)
            first = False
        return
    while chunk := list(itertools.islice(it, per_message)):
        req = pb.MatchStreamRequest(
            images=[pb.Image(content_id=cid, data=data) for cid, data in chunk]
        )
        if first:
            req.options.CopyFrom(options)
            first = False
        yield req


def stream_results(resp: pb.MatchStreamResponse) -> list[ItemOutcome]:
    """The answers one stream message carries (one, or a group)."""
    if resp.results:
        return outcomes(resp.results)
    return [ItemOutcome.from_proto(resp.result)]


def outcomes(results: Iterable[pb.ItemResult]) -> list[ItemOutcome]:
    return [ItemOutcome.from_proto(r) for r in results]
