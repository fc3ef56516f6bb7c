"""The attacks of the tenant-boundary review, each replayed against a real server on
loopback with two approved tenants (acme, beta) and a public bank: each must now fail."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.proto import bank_pb, bank_rpc, pb, rpc
from tests import server_harness
from tests.tenancy_setup import admin, key, tenant

RNG = np.random.default_rng(1717)
PUBLIC = "ncmec"
LISTED = [RNG.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(300)]


@dataclass
class World:
    srv: server_harness.ServerProcess
    data: Path
    operator: str
    acme: str
    beta: str

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {getattr(self, who)}"),)

    @property
    def match(self) -> Any:
        return rpc.MatchServiceStub(self.srv.channel())  # type: ignore[no-untyped-call]

    @property
    def banks(self) -> Any:
        return bank_rpc.BankServiceStub(self.srv.channel())  # type: ignore[no-untyped-call]

    def hashes(self, who: str, values: list[bytes]) -> list[pb.ItemResult]:
        req = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=v)
                                            for v in values])  # fmt: skip
        return list(self.match.MatchHashes(req, metadata=self.md(who)).results)


def _cli(data: Path, *argv: str) -> None:
    assert main([*argv, "--data-dir", str(data)], Streams(stdout=io.StringIO())) == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("attacks") / "data"
    admin(data, "bootstrap")
    operator = (data / "operator.key").read_text().strip()
    for t in ("acme", "beta"):
        tenant(data, t, "approve")
    acme = key(data, "acme", "match", "bank-admin")
    beta = key(data, "beta", "match", "bank-admin", "tenant-admin")
    _cli(data, "bank", "create", PUBLIC, "--visibility", "public")
    _cli(data, "bank", "add", PUBLIC, *[v.hex() for v in LISTED], "--label", "A1")
    config = data.parent / "hm.toml"
    config.write_text("[auth]\nrate_per_second = 1000\nburst = 2000\n")
    srv = server_harness.start(data, "--config", str(config))
    try:
        yield World(srv, data, operator, acme, beta)
    finally:
        assert srv.stop() == 0, "".join(srv.log)


def _until(predicate: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def _complement(value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in value)


def test_1_feedback_copies_no_stored_value(world: World) -> None:
    """beta's FALSE_POSITIVE verdicts on every id of the public bank leave nothing beta
    can list: no bank of beta's holds a single stored value."""
    for entry_id in range(1, len(LISTED) + 1):
        req = bank_pb.FeedbackRequest(bank=PUBLIC, entry_id=entry_id,
                                      verdict=bank_pb.FALSE_POSITIVE)  # fmt: skip
        try:
            world.banks.SendFeedback(req, metadata=world.md("beta"))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND  # an id of another bank
    leaked: set[bytes] = set()
    for bank in world.banks.ListBanks(bank_pb.ListBanksRequest(), metadata=world.md("beta")).banks:
        if bank.owner != "beta":
            continue
        entries = world.banks.ListEntries(
            bank_pb.ListEntriesRequest(bank=bank.name, limit=10_000), metadata=world.md("beta")
        )
        leaked |= {e.value for e in entries.entries}
    assert leaked & set(LISTED) == set()
    # The verdicts still work, for beta alone: its matches are suppressed, acme's are not.
    (beta_hit,) = world.hashes("beta", [LISTED[0]])
    (acme_hit,) = world.hashes("acme", [LISTED[0]])
    assert not beta_hit.is_match and beta_hit.matches[0].suppressed_by.bank == "feedback"
    assert acme_hit.is_match


def test_1_feedback_is_charged_like_a_match(world: World) -> None:
    admin(world.data, "tenant", "limits", "beta", "--monthly-items", "1")  # already past it
    try:
        _until(lambda: _refused_feedback(world))
    finally:
        admin(world.data, "tenant", "limits", "beta", "--monthly-items", "0")


def _refused_feedback(world: World) -> bool:
    req = bank_pb.FeedbackRequest(bank=PUBLIC, entry_id=2, verdict=bank_pb.CONFIRMED)
    try:
        world.banks.SendFeedback(req, metadata=world.md("beta"))
    except grpc.RpcError as exc:
        return bool(exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED)
    return False


def _shared(name: str, kind: int, threshold: int | None, to: list[str]) -> Any:
    settings = bank_pb.BankSettings(
        visibility=bank_pb.SHARED, set_shared_with=True, shared_with=to, kind=kind
    )
    if threshold is not None:
        settings.pdq_threshold = threshold
    return bank_pb.CreateBankRequest(name=name, settings=settings)


def test_2_an_allow_bank_silences_nobody_without_consent(world: World) -> None:
    too_loose = _shared("beta:allow-all", bank_pb.ALLOW, 128, ["acme", ""])
    with pytest.raises(grpc.RpcError) as exc:
        world.banks.CreateBank(too_loose, metadata=world.md("beta"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum" in (exc.value.details() or "")
    # Within the limit, and holding the very values of the public bank:
    world.banks.CreateBank(
        _shared("beta:allow", bank_pb.ALLOW, 31, ["acme", ""]), metadata=world.md("beta")
    )
    values = [LISTED[5], _complement(LISTED[5])]
    world.banks.AddEntries(
        bank_pb.AddEntriesRequest(bank="beta:allow", entries=[
            bank_pb.Entry(signal_type=pb.PDQ, value=v) for v in values]),
        metadata=world.md("beta"),
    )  # fmt: skip
    _until(lambda: not world.hashes("beta", [LISTED[5]])[0].is_match)  # beta's own: applies
    for who in ("acme", "operator"):
        (hit,) = world.hashes(who, [LISTED[5]])
        assert hit.is_match and not hit.matches[0].HasField("suppressed_by")
    # acme consents: from then on (and only for acme) the allow bank applies; it can leave.
    world.banks.AcceptShare(bank_pb.ShareRequest(bank="beta:allow"), metadata=world.md("acme"))
    _until(lambda: not world.hashes("acme", [LISTED[5]])[0].is_match)
    assert world.hashes("operator", [LISTED[5]])[0].is_match
    world.banks.LeaveShare(bank_pb.ShareRequest(bank="beta:allow"), metadata=world.md("acme"))
    _until(lambda: world.hashes("acme", [LISTED[5]])[0].is_match)


def test_2_a_bank_made_looser_than_the_maximum_is_capped(world: World) -> None:
    """A bank written directly with 128 bits (the store allows it) matches at the
    installation's maximum: h and its complement no longer cover every hash."""
    _cli(world.data, "bank", "create", "loose", "--threshold", "128", "--kind", "allow")
    h = RNG.integers(0, 256, 32, dtype=np.uint8).tobytes()
    _cli(world.data, "bank", "add", "loose", h.hex(), _complement(h).hex(), LISTED[8].hex())
    _until(lambda: not world.hashes("operator", [LISTED[8]])[0].is_match)  # applied
    # Every hash is within 128 bits of h or its complement; none is within 31 of both.
    (hit,) = world.hashes("operator", [LISTED[7]])
    assert hit.is_match and not hit.matches[0].HasField("suppressed_by")


def test_3_a_shared_block_bank_adds_no_matches_without_consent(world: World) -> None:
    world.banks.CreateBank(
        _shared("beta:fake-ncmec", bank_pb.BLOCK, 31, ["acme"]), metadata=world.md("beta")
    )
    planted = [RNG.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(100)]
    world.banks.AddEntries(
        bank_pb.AddEntriesRequest(bank="beta:fake-ncmec", entries=[
            bank_pb.Entry(signal_type=pb.PDQ, value=v, label="A1", source="NCMEC")
            for v in planted]),
        metadata=world.md("beta"),
    )  # fmt: skip
    _until(lambda: all(r.is_match for r in world.hashes("beta", planted)))
    assert not any(r.is_match for r in world.hashes("acme", planted))
    got = world.banks.GetBank(bank_pb.GetBankRequest(name="beta:fake-ncmec"),
                              metadata=world.md("acme"))  # fmt: skip
    assert got.share_state == bank_pb.INVITED and not got.shared_with
