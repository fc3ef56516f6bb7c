"""Privacy by construction: images live only in memory.

Images carrying a random marker (in a PNG text chunk, a JPEG comment, raw pixel values,
and in bytes that are not an image at all) go through every RPC of a real server; then
the data dir, the server's temp dir, its log and its metrics are searched for the marker
(as text and as hex): nothing may be found.
"""

from __future__ import annotations

import io
import os
import secrets
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hashmatch.proto import admin_pb, admin_rpc, bank_pb, bank_rpc, pb, rpc
from tests import server_harness
from tests.helpers import synthetic_rgb
from tests.tenancy_setup import admin


def _images(marker: bytes) -> list[bytes]:
    pixels = synthetic_rgb(96, 128, seed=11)
    row = np.frombuffer(marker * (128 * 3 // len(marker) + 1), np.uint8)[: 128 * 3]
    pixels[0] = row.reshape(128, 3)  # the marker's bytes as pixel values
    png, jpeg = io.BytesIO(), io.BytesIO()
    info = PngInfo()
    info.add_text("Comment", marker.decode())
    Image.fromarray(pixels).save(png, "PNG", pnginfo=info)
    Image.fromarray(pixels).save(jpeg, "JPEG", quality=90, comment=marker)
    good = [png.getvalue(), jpeg.getvalue()]
    bad = [marker + secrets.token_bytes(64), jpeg.getvalue()[: len(jpeg.getvalue()) // 2]]
    for data in good:
        assert marker in data  # the test would see a leak of these bytes
    return good + bad


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _, names in os.walk(root):
        for n in names:
            yield Path(dirpath) / n


def test_no_image_bytes_anywhere(tmp_path: Path) -> None:
    marker = f"HMPRIVACY{secrets.token_hex(12)}".encode()
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    tmp.mkdir()
    admin(data, "bootstrap")
    operator = (data / "operator.key").read_text().strip()
    md = (("authorization", f"Bearer {operator}"),)
    srv = server_harness.start(data, env={"TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp)})
    images = _images(marker)
    metrics = ""
    try:
        limits = Path(f"/proc/{srv.proc.pid}/limits")
        if limits.exists():  # no core file could ever hold an image
            (core,) = [ln for ln in limits.read_text().splitlines() if "core file" in ln]
            assert core.split()[4:6] == ["0", "0"], core
        with srv.channel() as ch:
            match = rpc.MatchServiceStub(ch)  # type: ignore[no-untyped-call]
            banks = bank_rpc.BankServiceStub(ch)  # type: ignore[no-untyped-call]
            adm = admin_rpc.AdminServiceStub(ch)  # type: ignore[no-untyped-call]
            reqs = [pb.Image(content_id=f"c{k}", data=d) for k, d in enumerate(images)]
            hashed = match.HashImages(pb.HashImagesRequest(images=reqs, dihedral=True), metadata=md)
            assert [r.status.code for r in hashed.results][:2] == [pb.OK, pb.OK]
            banks.CreateBank(bank_pb.CreateBankRequest(name="priv"), metadata=md)
            entries = [
                bank_pb.Entry(signal_type=pb.PDQ, value=r.signatures.pdq, label="x")
                for r in hashed.results[:2]
            ]
            banks.AddEntries(bank_pb.AddEntriesRequest(bank="priv", entries=entries), metadata=md)
            opts = pb.MatchOptions(dihedral=True)
            match.MatchImages(pb.MatchImagesRequest(images=reqs, options=opts), metadata=md)
            stream = [pb.MatchStreamRequest(image=im, options=opts) for im in reqs]
            assert len(list(match.MatchStream(iter(stream), metadata=md))) == len(images)
            match.MatchHashes(
                pb.MatchHashesRequest(
                    hashes=[pb.HashQuery(signal_type=pb.PDQ, value=e.value) for e in entries]
                ),
                metadata=md,
            )
            banks.GetBank(bank_pb.GetBankRequest(name="priv"), metadata=md)
            banks.ListBanks(bank_pb.ListBanksRequest(), metadata=md)
            banks.UpdateBank(
                bank_pb.UpdateBankRequest(name="priv", settings=bank_pb.BankSettings()), metadata=md
            )
            banks.ListEntries(bank_pb.ListEntriesRequest(bank="priv"), metadata=md)
            exported = b"".join(
                c.data for c in banks.ExportEntries(bank_pb.ExportRequest(bank="priv"), metadata=md)
            )
            banks.CreateBank(bank_pb.CreateBankRequest(name="priv2"), metadata=md)
            chunk = bank_pb.ImportChunk(bank="priv2", format="csv", data=exported)
            banks.ImportEntries(iter([chunk]), metadata=md)
            banks.RemoveEntries(
                bank_pb.RemoveEntriesRequest(
                    bank="priv",
                    values=[bank_pb.HashValue(signal_type=pb.PDQ, value=entries[0].value)],
                ),
                metadata=md,
            )
            banks.DeleteBank(bank_pb.DeleteBankRequest(name="priv2"), metadata=md)
            adm.ApplyTenant(
                admin_pb.ApplyTenantRequest(
                    tenant_id="p", organisation="o", contact="c", intended_use="u"
                )
            )
            adm.GetTenant(admin_pb.GetTenantRequest(tenant_id="p"), metadata=md)
            adm.ListTenants(admin_pb.ListTenantsRequest(), metadata=md)
            adm.SetTenantState(
                admin_pb.SetTenantStateRequest(tenant_id="p", action=admin_pb.APPROVE), metadata=md
            )
            made = adm.CreateKey(
                admin_pb.CreateKeyRequest(tenant_id="p", roles=["match"]), metadata=md
            )
            adm.ListKeys(admin_pb.ListKeysRequest(tenant_id="p"), metadata=md)
            rotated = adm.RotateKey(admin_pb.RotateKeyRequest(key_id=made.key.id), metadata=md)
            adm.RevokeKey(admin_pb.RevokeKeyRequest(key_id=rotated.key.id), metadata=md)
            adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=md)
            # A tenant's calls, refused ones included.
            tenant_md = (("authorization", f"Bearer {made.secret}"),)
            match.MatchImages(pb.MatchImagesRequest(images=reqs), metadata=tenant_md)
            try:
                match.MatchImages(pb.MatchImagesRequest(images=reqs))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
        url = f"http://127.0.0.1:{srv.metrics_port}/metrics"
        metrics = urllib.request.urlopen(url, timeout=10).read().decode()
    finally:
        assert srv.stop() == 0
    needles = [marker, marker.hex().encode()]
    found = [
        str(path)
        for root in (data, tmp)
        for path in _files(root)
        if any(n in path.read_bytes() for n in needles)
    ]
    log = "".join(srv.log).encode() + metrics.encode()
    assert not found, f"marker found in {found}"
    assert not any(n in log for n in needles), "marker found in the server's log or metrics"
    assert any(_files(data)), "the data dir should hold the databases"


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    """Who can read the data dir reads every bank and the audit: a new one is 0700."""
    from hashmatch.storage.datadir import DataDir

    store = DataDir(tmp_path / "fresh" / "data").open_banks()
    store.close()
    assert (tmp_path / "fresh" / "data").stat().st_mode & 0o077 == 0
