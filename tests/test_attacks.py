"""The attacks of the tenant-boundary review, each replayed against a real server on
loopback with two approved tenants (acme, beta) and a public bank: each must now fail."""

from __future__ import annotations

import io
import time
import urllib.request
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
    mallory: str
    carol: str

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
    for t in ("acme", "beta", "mallory", "carol"):
        tenant(data, t, "approve")
    acme = key(data, "acme", "match", "bank-admin")
    beta = key(data, "beta", "match", "bank-admin", "tenant-admin")
    mallory = key(data, "mallory", "match")
    carol = key(data, "carol", "match")
    _cli(data, "bank", "create", PUBLIC, "--visibility", "public")
    _cli(data, "bank", "add", PUBLIC, *[v.hex() for v in LISTED], "--label", "A1")
    config = data.parent / "hm.toml"
    config.write_text(
        "[auth]\nrate_per_second = 1000\nburst = 2000\n[probe]\nmax_near = 30\n"
        "[flood]\nmax_distinct = 20\nsuspend = true\n"
    )
    srv = server_harness.start(data, "--config", str(config))
    try:
        yield World(srv, data, operator, acme, beta, mallory, carol)
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


def test_2_an_accepted_block_share_turned_allow_asks_for_consent_again(world: World) -> None:
    """acme accepted beta's block bank; beta then makes it an allow bank holding a value
    acme matches: the change resets acme's acceptance (it was consent to a block bank),
    so acme's match stands until acme accepts the bank as it now is."""
    world.banks.CreateBank(
        _shared("beta:flip", bank_pb.BLOCK, 31, ["acme"]), metadata=world.md("beta")
    )
    world.banks.AddEntries(
        bank_pb.AddEntriesRequest(bank="beta:flip", entries=[
            bank_pb.Entry(signal_type=pb.PDQ, value=LISTED[11])]),
        metadata=world.md("beta"),
    )  # fmt: skip
    world.banks.AcceptShare(bank_pb.ShareRequest(bank="beta:flip"), metadata=world.md("acme"))
    world.banks.UpdateBank(
        bank_pb.UpdateBankRequest(
            name="beta:flip", settings=bank_pb.BankSettings(kind=bank_pb.ALLOW)
        ),
        metadata=world.md("beta"),
    )
    got = world.banks.GetBank(bank_pb.GetBankRequest(name="beta:flip"), metadata=world.md("acme"))
    assert got.share_state == bank_pb.INVITED
    _until(lambda: not world.hashes("beta", [LISTED[11]])[0].is_match)  # the flip applied
    (hit,) = world.hashes("acme", [LISTED[11]])
    assert hit.is_match and not hit.matches[0].HasField("suppressed_by")
    # Accepted again, knowingly: now it applies to acme.
    world.banks.AcceptShare(bank_pb.ShareRequest(bank="beta:flip"), metadata=world.md("acme"))
    _until(lambda: not world.hashes("acme", [LISTED[11]])[0].is_match)
    # Made looser as an allow bank: asked again too.
    world.banks.UpdateBank(
        bank_pb.UpdateBankRequest(name="beta:flip",
                                  settings=bank_pb.BankSettings(pdq_threshold=20)),
        metadata=world.md("beta"),
    )  # fmt: skip
    world.banks.UpdateBank(
        bank_pb.UpdateBankRequest(name="beta:flip",
                                  settings=bank_pb.BankSettings(pdq_threshold=31)),
        metadata=world.md("beta"),
    )  # fmt: skip
    got = world.banks.GetBank(bank_pb.GetBankRequest(name="beta:flip"), metadata=world.md("acme"))
    assert got.share_state == bank_pb.INVITED


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


def _flip(value: bytes, bits: list[int]) -> bytes:
    out = bytearray(value)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


def test_6_distances_do_not_walk_a_hash_back(world: World) -> None:
    """Not the bank's owner: distances come in buckets (0, 8, 16, 24, 31), so one more or
    one less flipped bit mostly changes nothing in the answer; the owner sees them exact."""
    target = LISTED[40]
    shown = {}
    for k in range(9, 17):
        (hit,) = world.hashes("acme", [_flip(target, list(range(k)))])
        shown[k] = hit.matches[0].distance
    assert set(shown.values()) == {16}
    (exact,) = world.hashes("operator", [_flip(target, list(range(13)))])
    assert exact.matches[0].distance == 13


def test_6_max_distance_tells_no_more_than_the_bucket(world: World) -> None:
    """A binary search over max_distance would read the exact distance that the bucket
    hides (5 calls a hash, and repeating one hash is no probe). For a caller that does
    not own the bank the request is rounded down to a bucket's edge: which thresholds
    match is the same for every distance in one bucket; the owner's are exact."""

    def matched_at(who: str, value: bytes) -> list[int]:
        at = []
        for t in range(1, 32):  # 0 is unset: the bank's own threshold
            req = pb.MatchHashesRequest(
                hashes=[pb.HashQuery(signal_type=pb.PDQ, value=value)],
                options=pb.MatchOptions(max_distance=t),
            )
            (res,) = world.match.MatchHashes(req, metadata=world.md(who)).results
            if res.is_match:
                at.append(t)
        return at

    # A target of its own for each distance: queries far apart, so no probe either way.
    seen = {k: matched_at("carol", _flip(LISTED[60 + k], list(range(k)))) for k in range(9, 17)}
    assert all(at == list(range(16, 32)) for at in seen.values()), seen
    assert matched_at("operator", _flip(LISTED[70], list(range(11)))) == list(range(11, 32))


def test_6_the_order_of_matches_tells_no_more_than_the_bucket(world: World) -> None:
    """acme's own bank holds entries at every known distance 0..31 from each query: were
    matches ordered by exact distance, where the public bank's match falls among them would
    read its distance. Ordered by the distances shown, its place is one per bucket."""
    entries = []
    queries = {k: _flip(LISTED[80 + k], list(range(k))) for k in range(9, 17)}
    for q in queries.values():
        entries += [bank_pb.Entry(signal_type=pb.PDQ, value=_flip(q, list(range(255, 255 - j, -1))))
                    for j in range(32)]  # fmt: skip
    world.banks.CreateBank(bank_pb.CreateBankRequest(name="acme:ladder"), metadata=world.md("acme"))
    req = bank_pb.AddEntriesRequest(bank="acme:ladder", entries=entries)
    assert world.banks.AddEntries(req, metadata=world.md("acme")).added == len(entries)
    _until(lambda: len(world.hashes("acme", [queries[9]])[0].matches) == 33)
    places = {}
    for k, q in queries.items():
        (res,) = world.hashes("acme", [q])
        shown = [(m.bank, m.distance) for m in res.matches]
        assert (PUBLIC, 16) in shown and len(shown) == 33
        places[k] = shown.index((PUBLIC, 16))
    assert len(set(places.values())) == 1, places


def test_6_tenants_send_no_dihedral_slots(world: World) -> None:
    probe = pb.HashQuery(signal_type=pb.PDQ, value=LISTED[41], pdq_dihedral=[LISTED[41]] * 8)
    req = pb.MatchHashesRequest(hashes=[probe])
    (res,) = world.match.MatchHashes(req, metadata=world.md("acme")).results
    assert res.status.code == pb.BAD_PARAMETER and "dihedral" in res.status.message
    (ok,) = world.match.MatchHashes(req, metadata=world.md("operator")).results
    assert ok.status.code == pb.OK and ok.is_match


def test_6_walking_a_hash_bit_by_bit_is_noticed_and_throttled(world: World) -> None:
    """mallory walks from a 20-bit-off near-duplicate back, one bit a query: past 30
    near-identical queries its hash queries are refused, with a metric and an audit
    record saying so."""
    from tests.helpers import audit_trail

    target = LISTED[42]
    refused = None
    for k in range(40):
        try:
            world.hashes("mallory", [_flip(target, list(range(k % 20, 20)))])
        except grpc.RpcError as exc:
            refused = (k, exc.code())
            break
    assert refused is not None and refused[1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused[0] <= 32
    with pytest.raises(grpc.RpcError) as again:  # still refused: the cooldown holds
        world.hashes("mallory", [LISTED[43]])
    assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert world.hashes("acme", [LISTED[43]])[0].is_match  # another tenant is untouched
    _until(lambda: any(r["rpc"] == "ProbeSuspected" and r["tenant"] == "mallory"
                       for r in audit_trail(world.data / "audit.sqlite3")))  # fmt: skip
    body = urllib.request.urlopen(f"http://127.0.0.1:{world.srv.metrics_port}/metrics").read()
    assert 'hashmatch_tenant_probe_flags_total{tenant="mallory"} 1.0' in body.decode()


def test_7_one_tenant_cannot_quarantine_an_entry_for_everyone(world: World) -> None:
    """acme sends 30 distinct near-duplicates of a public entry (past max_distinct = 20):
    alone that flags nothing (each tenant counts for at most half); with carol's it does."""
    target = LISTED[60]
    # 10 random bits each: within the threshold, and far from one another (no probing).
    acme_side = [_flip(target, list(RNG.choice(256, 10, replace=False))) for _ in range(30)]
    assert all(r.is_match for r in world.hashes("acme", acme_side))
    (before,) = world.hashes("operator", [target])
    assert before.is_match  # nobody else is suppressed
    assert _quarantined(world) == []
    carol_side = [_flip(target, list(RNG.choice(256, 10, replace=False))) for _ in range(10)]
    world.hashes("carol", carol_side)
    (flagged,) = _quarantined(world)
    assert flagged["entry_id"] == before.matches[0].entry_id
    (after,) = world.hashes("operator", [target])
    assert not after.is_match and after.matches[0].suppressed_by.bank == "quarantine"


def _quarantined(world: World) -> list[dict[str, Any]]:
    import json

    out = io.StringIO()
    main(["quarantine", "list", "--data-dir", str(world.data)], Streams(stdout=out))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _png(width: int, height: int) -> bytes:
    """A grey PNG of zeros, compressed as it goes (20,000,000 x 5 is 91 bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("shape", [(20_000_000, 5), (5, 20_000_000), (150_000, 6)])
def test_4_a_tiny_png_of_a_hostile_shape_is_answered_and_others_go_on(
    world: World, shape: tuple[int, int]
) -> None:
    """Each used to hold the GIL for hours in the resampler's set-up; now the item is
    answered (hashed, it is within the limits), and another tenant is served meanwhile.
    The timeouts are hang guards, not performance targets."""
    from concurrent.futures import ThreadPoolExecutor

    image = _png(*shape)
    assert len(image) < 200_000
    req = pb.MatchImagesRequest(images=[pb.Image(content_id="hostile", data=image)])
    with ThreadPoolExecutor(1) as pool:
        hostile = pool.submit(world.match.MatchImages, req, timeout=120, metadata=world.md("acme"))
        for _ in range(3):
            assert world.hashes("carol", [LISTED[70]])[0].is_match
        (res,) = hostile.result(timeout=130).results
    assert res.status.code == pb.OK and res.signatures.quality == 0  # flat: quality 0


def test_4_sigterm_ends_the_server_within_its_grace(tmp_path: Path) -> None:
    """Far more work queued than the grace allows: the server still exits in time."""
    import signal
    import threading

    from tests.helpers import encode, synthetic_rgb

    config = tmp_path / "c.toml"
    config.write_text("[server]\ngrace_seconds = 1\n[batch]\nworkers = 1\nmax_batch = 4\n")
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    photo = encode(synthetic_rgb(960, 1280, seed=9), "JPEG", quality=90)
    stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
    req = pb.MatchImagesRequest(images=[pb.Image(data=photo)] * (60_000_000 // len(photo)))
    cut: list[grpc.StatusCode] = []
    calls = [threading.Thread(target=_quietly, args=(stub.MatchImages, req, cut))
             for _ in range(6)]  # fmt: skip
    for c in calls:
        c.start()
    time.sleep(2.0)  # admitted: some 1,700 large images queued, a few ms each
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(60)
    took = time.monotonic() - t0
    for c in calls:
        c.join(30)
    srv.stop()
    assert code == 0 and took < 15  # a hang guard: the grace is 1 s
    assert cut  # work was left when the grace ran out, and the process went anyway


def _quietly(fn: Any, req: Any, cut: list[grpc.StatusCode]) -> None:
    try:
        fn(req, timeout=120)
    except grpc.RpcError as exc:
        cut.append(exc.code())  # cut short by the shutdown, as it must be


def test_8_the_data_dir_is_private_from_the_first_command(tmp_path: Path) -> None:
    import stat

    data = tmp_path / "data"
    admin(data, "bootstrap")  # the README's first tenancy step creates the dir

    def modes() -> dict[str, int]:
        return {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir() if p.is_file()}

    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes() and set(modes().values()) == {0o600}, modes()
    srv = server_harness.start(data)
    try:
        _cli(data, "bank", "create", "b")
    finally:
        assert srv.stop() == 0
    files = modes()
    for name in ("banks.sqlite3", "audit.sqlite3", "reports.sqlite3", "feedback.sqlite3",
                 "flood.sqlite3", "tenants.sqlite3", "index.snapshot", "operator.key"):  # fmt: skip
        assert files.get(name) == 0o600, (name, files)
    assert set(files.values()) == {0o600}, files


def _outside_address() -> str:
    """An address of this machine that is not loopback (its first one)."""
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    subprocess.run(["ip", "link", "add", "hm-test0", "type", "dummy"], check=True)
    subprocess.run(["ip", "addr", "add", "10.254.254.1/32", "dev", "hm-test0"], check=True)
    subprocess.run(["ip", "link", "set", "hm-test0", "up"], check=True)
    return "10.254.254.1"


def test_9_open_mode_answers_only_this_machine_and_grants_nothing(tmp_path: Path) -> None:
    from hashmatch.proto import admin_pb, admin_rpc

    srv = server_harness.start(tmp_path / "data", "--listen", "0.0.0.0:0")
    try:
        outside = grpc.insecure_channel(f"{_outside_address()}:{srv.port}")
        req = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=bytes(32))])
        with pytest.raises(grpc.RpcError) as exc:
            rpc.MatchServiceStub(outside).MatchHashes(req, timeout=10)  # type: ignore[no-untyped-call]
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        local = srv.channel()
        rpc.MatchServiceStub(local).MatchHashes(req, timeout=10)  # type: ignore[no-untyped-call]
        admin_stub = admin_rpc.AdminServiceStub(local)  # type: ignore[no-untyped-call]
        admin_stub.ApplyTenant(admin_pb.ApplyTenantRequest(
            tenant_id="eve", organisation="Eve", contact="e@eve.example",
            intended_use="none"))  # fmt: skip
        grants = [
            lambda: admin_stub.SetTenantState(
                admin_pb.SetTenantStateRequest(tenant_id="eve", action=admin_pb.APPROVE)
            ),
            lambda: admin_stub.CreateKey(
                admin_pb.CreateKeyRequest(tenant_id="operator", roles=["operator"])
            ),
        ]
        for grant in grants:
            with pytest.raises(grpc.RpcError) as refused:
                grant()
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        assert srv.stop() == 0
    assert any("without TLS" in line for line in srv.log)  # 0.0.0.0 in clear text: said


def test_9_a_lost_tenants_database_is_a_start_up_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    admin(data, "bootstrap")
    for f in data.glob("tenants.sqlite3*"):
        f.unlink()
    with pytest.raises(RuntimeError) as exc:
        server_harness.start(data, timeout=30)
    assert "operator.key exists" in str(exc.value)


def test_10_a_big_import_holds_nobody_up(world: World) -> None:
    """beta imports 300,000 rows; acme's calls (a match, a bank read) are answered while
    the import is still running, and the import is applied whole."""
    import threading

    world.banks.CreateBank(bank_pb.CreateBankRequest(name="beta:big"), metadata=world.md("beta"))
    rows = b"".join(f"{k:064x},L\n".encode() for k in range(1, 300_001))
    chunks = [bank_pb.ImportChunk(bank="beta:big", format="csv", data=rows[i : i + (1 << 20)])
              for i in range(0, len(rows), 1 << 20)]  # fmt: skip
    done: list[Any] = []
    importer = threading.Thread(
        target=lambda: done.append(
            world.banks.ImportEntries(iter(chunks), metadata=world.md("beta"), timeout=600)
        )
    )
    importer.start()
    answered_during = 0
    end = time.monotonic() + 300
    while importer.is_alive() and time.monotonic() < end:
        assert world.hashes("acme", [LISTED[80]])[0].is_match
        world.banks.GetBank(bank_pb.GetBankRequest(name=PUBLIC), metadata=world.md("acme"))
        answered_during += importer.is_alive()
    importer.join(600)
    assert answered_during >= 1  # answered while the import still ran
    assert done and done[0].added == 300_000 and done[0].error_count == 0


def test_11_free_text_and_video_frames_are_bounded(world: World) -> None:
    from hashmatch.proto import video_pb, video_rpc

    world.banks.CreateBank(bank_pb.CreateBankRequest(name="beta:texts"), metadata=world.md("beta"))
    huge = bank_pb.AddEntriesRequest(bank="beta:texts", entries=[
        bank_pb.Entry(signal_type=pb.MD5, value=b"\7" * 16, label="x" * (4 << 20))])  # fmt: skip
    with pytest.raises(grpc.RpcError) as exc:
        world.banks.AddEntries(huge, metadata=world.md("beta"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 256" in (exc.value.details() or "")
    videos = video_rpc.VideoServiceStub(world.srv.channel())  # type: ignore[no-untyped-call]
    frame = video_pb.VideoFeature(pdq=LISTED[90], quality=90)
    too_many = video_pb.MatchVideoHashesRequest(
        features=[video_pb.VideoFeature(frame_number=k, timestamp=k, pdq=frame.pdq, quality=90)
                  for k in range(100_000)])  # fmt: skip
    with pytest.raises(grpc.RpcError) as exc:
        videos.MatchVideoHashes(too_many, metadata=world.md("carol"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_frames" in (exc.value.details() or "")
    # Charged per frame: a quota of 100 items does not pay for 150 frames.
    admin(world.data, "tenant", "limits", "carol", "--monthly-items", "100")
    try:
        some = video_pb.MatchVideoHashesRequest(
            features=[video_pb.VideoFeature(frame_number=k, timestamp=k, pdq=frame.pdq,
                                            quality=90) for k in range(150)])  # fmt: skip
        with pytest.raises(grpc.RpcError) as exc:
            videos.MatchVideoHashes(some, metadata=world.md("carol"))
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        admin(world.data, "tenant", "limits", "carol", "--monthly-items", "0")


def test_11_video_frames_count_as_the_tenant_s_items_in_metrics_and_usage(world: World) -> None:
    """Charged per frame, so counted per frame: a tenant probing through video frames is
    as visible to the per-tenant alerts and the usage report as one sending hashes."""
    import json

    from hashmatch.proto import video_pb, video_rpc

    videos = video_rpc.VideoServiceStub(world.srv.channel())  # type: ignore[no-untyped-call]

    def items() -> float:
        url = f"http://127.0.0.1:{world.srv.metrics_port}/metrics"
        body = urllib.request.urlopen(url).read().decode()
        mine = [ln for ln in body.splitlines()
                if ln.startswith('hashmatch_tenant_items_total{tenant="carol"}')]  # fmt: skip
        return float(mine[0].split()[-1]) if mine else 0.0

    before = items()
    req = video_pb.MatchVideoHashesRequest(
        features=[video_pb.VideoFeature(frame_number=k, timestamp=k, pdq=_flip(LISTED[95], [k]),
                                        quality=90) for k in range(40)])  # fmt: skip
    videos.MatchVideoHashes(req, metadata=world.md("carol"))
    assert items() == before + 40

    def frames() -> int:
        out = io.StringIO()
        args = ["report", "usage", "--data-dir", str(world.data), "--from", "2000", "--to", "2100"]
        assert main(args, Streams(stdout=out)) == 0
        rows = {r["tenant"]: r for r in map(json.loads, out.getvalue().splitlines())}
        return int(rows.get("carol", {}).get("video_frames", 0))

    _until(lambda: frames() >= 40)


def _verifications(metrics_port: int | None) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    (line,) = [ln for ln in body.splitlines() if ln.startswith("hashmatch_key_verifications_total")]
    return float(line.split()[-1])


def test_12_wrong_secrets_lock_out_only_their_source(tmp_path: Path) -> None:
    """Six wrong secrets for acme's key id from one address throttle that address, not
    the right key from another; a revoked key's id costs no scrypt however often tried."""
    data = tmp_path / "data"
    admin(data, "bootstrap")
    tenant(data, "acme", "approve")
    good = key(data, "acme", "match")
    revoked = key(data, "acme", "match")
    admin(data, "key", "revoke", revoked.split("_")[1])
    srv = server_harness.start(data, "--listen", "0.0.0.0:0")
    req = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=bytes(32))])

    def call(host: str, secret: str) -> grpc.StatusCode:
        with grpc.insecure_channel(f"{host}:{srv.port}") as ch:
            stub = rpc.MatchServiceStub(ch)  # type: ignore[no-untyped-call]
            try:
                stub.MatchHashes(req, metadata=(("authorization", f"Bearer {secret}"),))
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[no-any-return]
            return grpc.StatusCode.OK

    guesser = _outside_address()  # the guesser's calls come from there, ours from 127.0.0.1
    try:
        wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        for _ in range(6):
            assert call(guesser, wrong) == grpc.StatusCode.UNAUTHENTICATED
        assert call("127.0.0.1", good) == grpc.StatusCode.OK  # not locked out
        before = _verifications(srv.metrics_port)
        for _ in range(20):
            assert call(guesser, revoked[:-4] + "AAAA") == grpc.StatusCode.UNAUTHENTICATED
        assert _verifications(srv.metrics_port) == before  # answered without scrypt
    finally:
        assert srv.stop() == 0


def test_13_the_audit_trail_cannot_be_cut_or_re_chained(tmp_path: Path) -> None:
    import json
    import sqlite3

    data = tmp_path / "data"
    srv = server_harness.start(data)
    try:
        req = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=bytes(32))])
        stub = rpc.MatchServiceStub(srv.channel())  # type: ignore[no-untyped-call]
        for _ in range(10):
            stub.MatchHashes(req)
    finally:
        assert srv.stop() == 0

    def verified() -> dict[str, Any]:
        out = io.StringIO()
        main(["audit", "verify", "--data-dir", str(data)], Streams(stdout=out))
        return dict(json.loads(out.getvalue()))

    assert verified()["ok"] is True
    assert oct((data / "audit.key").stat().st_mode & 0o777) == "0o600"
    db = sqlite3.connect(data / "audit.sqlite3")
    db.execute("DELETE FROM audit WHERE seq > (SELECT max(seq) - 3 FROM audit)")
    db.commit()
    db.close()
    result = verified()
    assert result["ok"] is False and "missing" in result["problems"][0]


def test_low_findings(world: World, tmp_path: Path) -> None:
    """The review's low findings, each now refused with a clear answer."""
    from hashmatch.proto import admin_pb, admin_rpc

    admin_stub = admin_rpc.AdminServiceStub(world.srv.channel())  # type: ignore[no-untyped-call]
    beta = world.md("beta")
    # A rotation's overlap out of range: refused before a new key exists.
    (kid,) = [k.id for k in admin_stub.ListKeys(admin_pb.ListKeysRequest(), metadata=beta).keys]
    with pytest.raises(grpc.RpcError) as exc:
        admin_stub.RotateKey(admin_pb.RotateKeyRequest(key_id=kid, overlap_seconds=2**62),
                             metadata=beta)  # fmt: skip
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(admin_stub.ListKeys(admin_pb.ListKeysRequest(), metadata=beta).keys) == 1
    # A trailing newline is no part of a tenant id or a bank name.
    with pytest.raises(grpc.RpcError) as exc:
        admin_stub.ApplyTenant(admin_pb.ApplyTenantRequest(
            tenant_id="acme\n", organisation="x", contact="x@x", intended_use="x"))  # fmt: skip
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as exc:
        world.banks.CreateBank(bank_pb.CreateBankRequest(name="beta:x\n"), metadata=beta)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # sandbox export does not write through a symlink.
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "sandbox"
    out.mkdir()
    (out / "test-hit-00.png").symlink_to(target)
    err = io.StringIO()
    code = main(["sandbox", "export", str(out)], Streams(stdout=io.StringIO(), stderr=err))
    assert code != 0 and "symlink" in err.getvalue() and target.read_text() == "keep me"


def test_low_findings_on_the_rest_face(tmp_path: Path) -> None:
    import json

    srv = server_harness.start(tmp_path / "data", "--rest-listen", "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{srv.rest_port}/photodna/v1.0"

        def post(path: str, body: bytes) -> tuple[int, dict[str, Any]]:
            req = urllib.request.Request(f"{base}/{path}", data=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())

        deep = b"[" * 100_000 + b"]" * 100_000
        status, body = post("MatchHash", deep)
        assert status == 200 and body["Status"]["Code"] == 3002
        status, body = post("Report", json.dumps({"ViolationContentCollection": [1]}).encode())
        assert status == 200 and body["Status"]["Code"] == 3002
        assert "list of objects" in body["Status"]["Exception"]
    finally:
        assert srv.stop() == 0


def test_api_keys_need_not_be_in_argv(world: World, tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_text(world.acme + "\n")
    image = tmp_path / "x.png"
    from tests.helpers import encode, synthetic_rgb

    image.write_bytes(encode(synthetic_rgb(64, 64, seed=5), "PNG"))
    server = ["--server", world.srv.target]
    out, err = io.StringIO(), io.StringIO()
    assert main(["match", *server, "--api-key-file", str(keyfile), str(image)],
                Streams(stdout=out, stderr=err)) == 0  # fmt: skip
    assert "error" not in out.getvalue() and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    main(["match", *server, "--api-key", world.acme, str(image)], Streams(stdout=out, stderr=err))
    assert "process list" in err.getvalue()  # still works, with a warning
