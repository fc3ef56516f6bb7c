"""End to end against `hashmatch serve` in a subprocess, on a real port."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from PIL import Image

from hashmatch.client import Client
from hashmatch.config import EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.proto import bank_pb, bank_rpc, pb, rpc
from tests import server_harness
from tests.helpers import encode, synthetic_rgb


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_harness.ServerProcess]:
    srv = server_harness.start(tmp_path_factory.mktemp("data"), "--workers", "2")
    yield srv
    assert srv.stop() == 0, "".join(srv.log)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [
        encode(synthetic_rgb(240 + 8 * k, 320, seed=100 + k), "JPEG", quality=92) for k in range(6)
    ]


@pytest.fixture(scope="module")
def banks(server: server_harness.ServerProcess) -> bank_rpc.BankServiceStub:
    return bank_rpc.BankServiceStub(server.channel())  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def match(server: server_harness.ServerProcess) -> rpc.MatchServiceStub:
    return rpc.MatchServiceStub(server.channel())  # type: ignore[no-untyped-call]


def _variant(data: bytes, scale: float, quality: int) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        small = img.resize((int(img.width * scale), int(img.height * scale)))
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def test_health_and_reflection(server: server_harness.ServerProcess) -> None:
    health = health_pb2_grpc.HealthStub(server.channel())
    for service in ("", "hashmatch.v1.MatchService", "hashmatch.v1.BankService", "liveness"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    # What grpcurl does with no proto files: list services, fetch their descriptors.
    db = ProtoReflectionDescriptorDatabase(server.channel())
    services = set(db.get_services())
    assert {
        "hashmatch.v1.MatchService",
        "hashmatch.v1.BankService",
        "grpc.health.v1.Health",
    } <= services
    desc = db.FindFileContainingSymbol("hashmatch.v1.MatchService")
    methods = {m.name for m in desc.service[0].method}
    assert methods == {"MatchImages", "MatchStream", "MatchHashes", "HashImages"}


def test_hash_images_equals_local_engine(match: rpc.MatchServiceStub, photos: list[bytes]) -> None:
    req = pb.HashImagesRequest(
        images=[pb.Image(content_id=f"c{k}", data=d) for k, d in enumerate(photos)], dihedral=True
    )
    resp = match.HashImages(req)
    local = Engine(EngineConfig(backend="cpu", dihedral=True)).hash_many(photos)  # type: ignore[arg-type]
    assert [r.content_id for r in resp.results] == [f"c{k}" for k in range(len(photos))]
    for r, want in zip(resp.results, local, strict=True):
        assert isinstance(want, Signature)
        assert r.status.code == pb.OK and r.status.photodna_code == 3000
        assert r.signatures.pdq == want.pdq.value and r.signatures.quality == want.quality
        assert r.signatures.md5 == want.md5 and r.signatures.sha256 == want.sha256
        assert [bytes(h) for h in r.signatures.pdq_dihedral] == [
            h.value for h in want.dihedral or ()
        ]
    assert len({r.tracking_id for r in resp.results}) == len(photos)


def test_bank_lifecycle_and_matching(
    server: server_harness.ServerProcess,
    banks: bank_rpc.BankServiceStub,
    match: rpc.MatchServiceStub,
    photos: list[bytes],
) -> None:
    listed = photos[:3]
    hashes = match.HashImages(pb.HashImagesRequest(images=[pb.Image(data=d) for d in listed]))
    banks.CreateBank(bank_pb.CreateBankRequest(name="csam-test", settings=bank_pb.BankSettings()))
    entries = [
        bank_pb.Entry(signal_type=pb.PDQ, value=r.signatures.pdq, label="A1", external_id=f"x{k}")
        for k, r in enumerate(hashes.results)
    ]
    report = banks.AddEntries(bank_pb.AddEntriesRequest(bank="csam-test", entries=entries))
    assert report.added == 3
    again = banks.AddEntries(bank_pb.AddEntriesRequest(bank="csam-test", entries=entries))
    assert again.added == 0 and again.unchanged == 3
    got = banks.GetBank(bank_pb.GetBankRequest(name="csam-test"))
    assert got.counts["pdq"] == 3 and got.pdq_threshold == 31

    # Re-encoded and resized copies of the listed images, and unrelated images.
    queries = [_variant(d, 0.7, 60) for d in listed] + photos[3:]
    client = Client(server.target)

    def listed_match() -> bool:
        return client.match_images(queries[:1])[0].is_match

    _wait_for(listed_match)  # the server follows the bank's change log
    outcomes = client.match_images(queries, content_ids=[f"q{k}" for k in range(len(queries))])
    assert [o.is_match for o in outcomes] == [True] * 3 + [False] * 3
    for o in outcomes[:3]:
        (m,) = o.matches
        assert m["bank"] == "csam-test" and m["label"] == "A1" and 0 <= m["distance"] <= 31
        assert "value" not in m  # lists do not leak through matching
    # A stricter threshold than the distance found removes the match.
    tight = client.match_images(
        queries[:1], max_distance=max(outcomes[0].matches[0]["distance"] - 1, 0)
    )
    assert outcomes[0].matches[0]["distance"] == 0 or not tight[0].is_match
    # Banks filter: an unknown bank is NOT_FOUND.
    with pytest.raises(grpc.RpcError) as exc:
        client.match_images(queries[:1], banks=["no-such-bank"])
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    # MatchHashes: PDQ, MD5, SHA-256 and a malformed value, per item.
    sig = hashes.results[0].signatures
    resp = match.MatchHashes(
        pb.MatchHashesRequest(
            hashes=[
                pb.HashQuery(content_id="p", signal_type=pb.PDQ, value=sig.pdq),
                pb.HashQuery(content_id="m", signal_type=pb.MD5, value=sig.md5),
                pb.HashQuery(content_id="bad", signal_type=pb.PDQ, value=b"short"),
            ]
        )
    )
    assert [r.content_id for r in resp.results] == ["p", "m", "bad"]
    assert resp.results[0].is_match and resp.results[0].matches[0].distance == 0
    assert not resp.results[1].is_match  # only the PDQ was listed
    assert resp.results[2].status.code == pb.BAD_PARAMETER

    # Listing (owner view) pages by id; export and import round trip.
    page = banks.ListEntries(bank_pb.ListEntriesRequest(bank="csam-test", limit=2))
    assert len(page.entries) == 2 and page.next_after_id == page.entries[-1].id
    rest = banks.ListEntries(
        bank_pb.ListEntriesRequest(bank="csam-test", after_id=page.next_after_id)
    )
    assert len(rest.entries) == 1 and rest.next_after_id == 0
    exported = b"".join(
        c.data for c in banks.ExportEntries(bank_pb.ExportRequest(bank="csam-test", format="csv"))
    )
    assert exported.count(b"\n") == 3
    te_call = banks.ExportEntries(bank_pb.ExportRequest(bank="csam-test", format="te"))
    assert b"".join(c.data for c in te_call).count(b"\npdq ") == 2  # labels cannot travel:
    left_out = dict(te_call.trailing_metadata())["hashmatch-export-left-out"]
    assert "the labels and sources of 3 entries" in left_out
    banks.CreateBank(bank_pb.CreateBankRequest(name="copy"))
    chunks = [
        bank_pb.ImportChunk(bank="copy", format="csv", data=exported[:50]),
        bank_pb.ImportChunk(data=exported[50:]),
    ]
    assert banks.ImportEntries(iter(chunks)).added == 3
    assert banks.ImportEntries(iter(chunks)).unchanged == 3  # idempotent
    for later in (bank_pb.ImportChunk(bank="csam-test"), bank_pb.ImportChunk(format="te")):
        with pytest.raises(grpc.RpcError) as renamed:  # the first chunk's bank was checked
            banks.ImportEntries(iter([chunks[0], later, chunks[1]]))
        assert renamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "first ImportChunk" in (renamed.value.details() or "")
    listed = banks.ListEntries(bank_pb.ListEntriesRequest(bank="csam-test")).entries
    assert len(listed) == 3  # nothing imported anywhere

    # Removal is seen by the matcher within a second or so; a malformed value is refused.
    with pytest.raises(grpc.RpcError) as malformed:
        banks.RemoveEntries(bank_pb.RemoveEntriesRequest(
            bank="csam-test", values=[bank_pb.HashValue(signal_type=pb.MD5, value=b"AAAA")]
        ))  # fmt: skip
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "md5 value is 16 bytes" in (malformed.value.details() or "")
    banks.DeleteBank(bank_pb.DeleteBankRequest(name="copy"))
    banks.RemoveEntries(
        bank_pb.RemoveEntriesRequest(
            bank="csam-test",
            values=[bank_pb.HashValue(signal_type=pb.PDQ, value=e.value) for e in entries],
        )
    )
    _wait_for(lambda: not listed_match())
    client.close()


def test_match_stream_answers_every_item_once(
    server: server_harness.ServerProcess, photos: list[bytes]
) -> None:
    items = [(f"s{k}", photos[k % len(photos)] if k % 7 else b"not an image") for k in range(120)]
    with Client(server.target) as client:
        outcomes = list(client.match_stream(iter(items)))
    assert sorted(o.content_id for o in outcomes) == sorted(c for c, _ in items)
    by_id = {o.content_id: o for o in outcomes}
    assert all(by_id[c].code == ("NOT_AN_IMAGE" if int(c[1:]) % 7 == 0 else "OK") for c, _ in items)


def test_a_stream_of_packed_messages_answers_each_image_once_in_groups(
    server: server_harness.ServerProcess, match: rpc.MatchServiceStub, photos: list[bytes]
) -> None:
    """Several images a message (`images`, after `image`): each is its own item, answered
    once, in `results` groups; a single-image message in the same stream is an item too."""
    items = [(f"p{k}", photos[k % len(photos)] if k % 5 else b"not an image") for k in range(90)]
    with Client(server.target) as client:
        outcomes = list(client.match_stream(iter(items), per_message=16))
    assert sorted(o.content_id for o in outcomes) == sorted(c for c, _ in items)
    assert all(o.code == ("NOT_AN_IMAGE" if int(o.content_id[1:]) % 5 == 0 else "OK")
               for o in outcomes)  # fmt: skip
    mixed = [
        pb.MatchStreamRequest(
            image=pb.Image(content_id="a", data=photos[0]),
            images=[pb.Image(content_id="b", data=photos[1])],
            options=pb.MatchOptions(omit_signatures=True),
        ),
        pb.MatchStreamRequest(image=pb.Image(content_id="c", data=photos[2])),
    ]
    answers = list(match.MatchStream(iter(mixed)))
    got = [r.content_id for a in answers for r in a.results]
    assert sorted(got) == ["a", "b", "c"] and not any(a.HasField("result") for a in answers)
    assert not any(r.HasField("signatures") for a in answers for r in a.results)
    too_many = pb.MatchStreamRequest(images=[pb.Image(data=b"x")] * 1001)  # over max_items
    with pytest.raises(grpc.RpcError) as refused:
        list(match.MatchStream(iter([too_many])))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_stream_options_of_the_first_message_hold_for_the_stream(
    match: rpc.MatchServiceStub, photos: list[bytes]
) -> None:
    """omit_signatures set on the first message only: no answer of the stream carries
    signatures (the proto: the first message's options hold unless a later one sets them)."""
    first = pb.MatchStreamRequest(
        image=pb.Image(content_id="s0", data=photos[0]),
        options=pb.MatchOptions(omit_signatures=True),
    )
    rest = [pb.MatchStreamRequest(image=pb.Image(content_id=f"s{k}", data=photos[k]))
            for k in range(1, len(photos))]  # fmt: skip
    answers = list(match.MatchStream(iter([first, *rest])))
    assert len(answers) == len(photos)
    assert all(a.result.status.code == pb.OK for a in answers)
    assert not any(a.result.HasField("signatures") for a in answers)
    # A later message that sets options changes them from there on.
    again = pb.MatchStreamRequest(
        image=pb.Image(content_id="t1", data=photos[1]), options=pb.MatchOptions()
    )
    (a0, a1) = sorted(match.MatchStream(iter([first, again])), key=lambda a: a.result.content_id)
    assert not a0.result.HasField("signatures") and a1.result.signatures.pdq


def test_reflection_v1_and_v1alpha(server: server_harness.ServerProcess) -> None:
    """Newer tools (grpcurl >= 1.9) ask grpc.reflection.v1 first; older ones v1alpha."""
    from grpc_reflection.v1alpha import reflection_pb2 as refl

    channel = server.channel()
    for version in ("v1", "v1alpha"):
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=refl.ServerReflectionRequest.SerializeToString,
            response_deserializer=refl.ServerReflectionResponse.FromString,
        )
        (resp,) = list(call(iter([refl.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in resp.list_services_response.service}
        assert {"hashmatch.v1.MatchService", "grpc.reflection.v1.ServerReflection"} <= names


def test_bad_requests_get_clear_statuses(
    server: server_harness.ServerProcess, match: rpc.MatchServiceStub
) -> None:
    assert list(match.MatchImages(pb.MatchImagesRequest()).results) == []  # empty batch: fine
    too_many = pb.MatchHashesRequest(
        hashes=[pb.HashQuery(signal_type=pb.MD5, value=b"\0" * 16)] * 10_000
    )
    with pytest.raises(grpc.RpcError) as exc:
        match.MatchHashes(too_many)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    huge = pb.HashImagesRequest(images=[pb.Image(data=b"\xff" * (81 * 1024 * 1024))])
    with pytest.raises(grpc.RpcError) as exc:
        match.HashImages(huge)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Bytes that are not the request message at all.
    raw = server.channel().unary_unary("/hashmatch.v1.MatchService/MatchImages")
    with pytest.raises(grpc.RpcError) as exc:
        raw(b"\xff\xff\xff\xff garbage")
    # gRPC itself rejects it before any handler runs (UNKNOWN, saying what failed).
    assert exc.value.code() == grpc.StatusCode.UNKNOWN
    assert "Error parsing message" in (exc.value.details() or "")
    # Garbage on the port itself.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 8)
        sock.settimeout(5)
        with contextlib.suppress(TimeoutError):
            sock.recv(1024)
    health = health_pb2_grpc.HealthStub(server.channel())
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )


def test_deadline_exceeded_costs_no_hashing(
    server: server_harness.ServerProcess, match: rpc.MatchServiceStub, photos: list[bytes]
) -> None:
    def dropped() -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
        lines = [
            ln
            for ln in body.decode().splitlines()
            if ln.startswith("hashmatch_dropped_items_total")
        ]
        return sum(float(ln.split()[-1]) for ln in lines if 'reason="queue_full"' not in ln)

    def queued() -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
        (line,) = [
            ln for ln in body.decode().splitlines() if ln.startswith("hashmatch_queue_depth")
        ]
        return float(line.split()[-1])

    before = dropped()
    # Long requests fill the hashing queue first; a short-deadline one waits behind them,
    # so its items are still queued when its deadline passes (no race with the clock).
    big = pb.MatchImagesRequest(images=[pb.Image(data=photos[0])] * 1000)
    ahead = [threading.Thread(target=lambda: match.MatchImages(big, timeout=120)) for _ in range(3)]
    for t in ahead:
        t.start()
    _wait_for(lambda: queued() >= 1500, timeout=60)
    req = pb.MatchImagesRequest(images=[pb.Image(data=photos[1])] * 20)
    with pytest.raises(grpc.RpcError) as exc:
        # Long enough to be admitted on a loaded machine, far shorter than the queue ahead.
        match.MatchImages(req, timeout=0.5)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Items still queued when the caller's deadline passed were dropped, not hashed.
    _wait_for(lambda: dropped() > before, timeout=30)
    for t in ahead:
        t.join(120)


def test_vanishing_and_stalled_stream_clients(
    server: server_harness.ServerProcess, photos: list[bytes]
) -> None:
    stub = rpc.MatchServiceStub(server.channel())  # type: ignore[no-untyped-call]

    def endless() -> Iterator[pb.MatchStreamRequest]:
        k = 0
        while True:
            yield pb.MatchStreamRequest(
                image=pb.Image(content_id=str(k), data=photos[k % len(photos)])
            )
            k += 1

    call = stub.MatchStream(endless())
    got = [next(call) for _ in range(20)]  # read a little, then vanish
    assert len(got) == 20
    call.cancel()
    stalled = stub.MatchStream(endless())  # sends forever, never reads
    threading.Timer(2.0, stalled.cancel).start()
    with pytest.raises(grpc.RpcError):
        for _ in stalled:
            time.sleep(10)
    health = health_pb2_grpc.HealthStub(server.channel())
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    with Client(server.target) as client:
        assert client.match_images(photos[:2])[0].ok


def test_metrics_scrape(
    server: server_harness.ServerProcess, match: rpc.MatchServiceStub, photos: list[bytes]
) -> None:
    match.MatchImages(pb.MatchImagesRequest(images=[pb.Image(data=photos[0])]))
    assert server.metrics_port is not None
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
        .read()
        .decode()
    )
    assert 'hashmatch_requests_total{rpc="MatchImages"}' in body
    assert "hashmatch_batch_size_bucket" in body
    assert 'hashmatch_item_results_total{code="OK"}' in body
    assert "hashmatch_queue_depth" in body and "hashmatch_index_entries" in body
    assert re.search(
        r'hashmatch_backend_info\{backend="(cpu|gpu)",decoder="cpu",device="[^"]+"\} 1.0', body
    )


def test_match_cli_against_server(
    server: server_harness.ServerProcess, tmp_path: Path, photos: list[bytes]
) -> None:
    from hashmatch.cli import main
    from hashmatch.commands.common import Streams

    f = tmp_path / "a.jpg"
    f.write_bytes(photos[0])
    out = io.StringIO()
    code = main(
        ["match", "--server", server.target, str(f), str(tmp_path / "nope.jpg")],
        Streams(stdout=out),
    )
    assert code == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and '"pdq"' in lines[0] and "UNREADABLE" in lines[1]


def test_async_client(server: server_harness.ServerProcess, photos: list[bytes]) -> None:
    import asyncio

    from hashmatch.client import AsyncClient

    async def go() -> tuple[list[str], list[str], list[str], list[str]]:
        async with AsyncClient(server.target) as client:
            matched = await client.match_images(photos[:3], content_ids=["a", "b", "c"])
            hashed = await client.hash_images(photos[:2])
            by_hash = await client.match_hashes([matched[0].pdq, "00" * 16, "zz"])

            async def items():  # type: ignore[no-untyped-def]
                for k, d in enumerate(photos[:5]):
                    yield f"s{k}", d

            streamed = [o.content_id async for o in client.match_stream(items())]
        return (
            [o.content_id for o in matched],
            [o.pdq for o in hashed],
            [o.code for o in by_hash],
            sorted(streamed),
        )

    ids, pdqs, codes, streamed = asyncio.run(go())
    assert ids == ["a", "b", "c"]
    assert all(len(p) == 64 for p in pdqs)
    assert codes == ["OK", "OK", "BAD_PARAMETER"]
    assert streamed == [f"s{k}" for k in range(5)]
