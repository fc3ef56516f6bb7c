"""A PhotoDNA-style client (plain HTTP requests shaped as the reference documents) against
hashmatch's REST face, on a real server."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.storage.datadir import DataDir
from tests import server_harness
from tests.helpers import audit_trail, encode, synthetic_rgb

LISTED = encode(synthetic_rgb(300, 400, seed=21), "JPEG", quality=90)
OTHER = encode(synthetic_rgb(300, 400, seed=22), "PNG")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server_harness.ServerProcess]:
    data = tmp_path_factory.mktemp("data")
    sig = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_one(LISTED)
    assert isinstance(sig, Signature)
    store = DataDir(data).open_banks()
    store.create_bank("NCMEC", BankSettings())
    store.write_entries("NCMEC", [NewEntry(SignalType.PDQ, sig.pdq.value, "A1", "ext-1")])
    store.close()
    srv = server_harness.start(data, "--rest-listen", "127.0.0.1:0")
    assert srv.rest_port is not None
    yield srv
    assert srv.stop() == 0
    # The REST face's calls are in the audit trail too.
    rpcs = {rec["rpc"] for rec in audit_trail(data / "audit.sqlite3")}
    assert {"REST:Match", "REST:MatchHash"} <= rpcs


def _post(srv: server_harness.ServerProcess, path: str, body: bytes, content_type: str) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{srv.rest_port}{path}",
        data=body,
        headers={"Content-Type": content_type, "Ocp-Apim-Subscription-Key": "test-key"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def test_match_raw_image_bytes(server: server_harness.ServerProcess) -> None:
    answer = _post(server, "/photodna/v1.0/Match?enhance=false&ContentId=c1", LISTED, "image/jpeg")
    assert answer["Status"] == {"Code": 3000, "Description": "OK", "Exception": None}
    assert answer["IsMatch"] is True and answer["ContentId"] == "c1" and answer["TrackingId"]
    (flag,) = answer["MatchDetails"]["MatchFlags"]
    assert flag["Source"] == "NCMEC" and flag["Violations"] == ["A1"] and flag["MatchDistance"] == 0
    assert (
        flag["AdvancedInfo"][0]["Key"] == "MatchId" and flag["AdvancedInfo"][0]["Value"].isdigit()
    )
    clean = _post(server, "/photodna/v1.0/Match", OTHER, "image/png")
    assert clean["Status"]["Code"] == 3000 and clean["IsMatch"] is False
    assert clean["MatchDetails"]["MatchFlags"] == []


def test_match_json_inline_and_error_codes(server: server_harness.ServerProcess) -> None:
    inline = json.dumps(
        {"DataRepresentation": "inline", "Value": base64.b64encode(LISTED).decode()}
    )
    assert _post(server, "/photodna/v1.0/Match", inline.encode(), "application/json")["IsMatch"]
    url = json.dumps({"DataRepresentation": "URL", "Value": "https://example.invalid/a.jpg"})
    assert (
        _post(server, "/photodna/v1.0/Match", url.encode(), "application/json")["Status"]["Code"]
        == 3002
    )
    assert (
        _post(server, "/photodna/v1.0/Match", b"not an image", "image/jpeg")["Status"]["Code"]
        == 3206
    )
    tiny = encode(synthetic_rgb(3, 3, seed=1), "PNG")
    assert _post(server, "/photodna/v1.0/Match", tiny, "image/png")["Status"]["Code"] == 3208
    bad_json = _post(server, "/photodna/v1.0/Match", b"{nope", "application/json")
    assert bad_json["Status"]["Code"] == 3002


def test_match_hash_batch(server: server_harness.ServerProcess) -> None:
    sig = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_one(LISTED)
    assert isinstance(sig, Signature)
    body = json.dumps(
        [
            {"DataRepresentation": "PDQ", "Value": sig.pdq.hex(), "ContentId": "a"},
            {"DataRepresentation": "MD5", "Value": sig.md5.hex(), "ContentId": "b"},
            {"DataRepresentation": "PreHashV2", "Value": "AAAA", "ContentId": "c"},
            {"DataRepresentation": "PDQ", "Value": "zz", "ContentId": "d"},
            {"DataRepresentation": "PDQ", "Value": sig.pdq.hex(), "ContentId": {"a": 1}},
            {"DataRepresentation": "MD5", "Value": 123, "ContentId": "f"},
        ]
    ).encode()
    answer = _post(server, "/photodna/v1.0/MatchHash?enhance=false", body, "application/json")
    results = {r["ContentId"]: r for r in answer["MatchResults"]}
    assert answer["TrackingId"] and list(results) == ["a", "b", "c", "d", "4", "f"]
    for odd in ("4", "f"):  # no string: the item's error, never its repr or its str()
        assert results[odd]["Status"]["Code"] == 3002 and not results[odd]["IsMatch"]
    assert (
        results["a"]["IsMatch"]
        and results["a"]["MatchDetails"]["MatchFlags"][0]["Source"] == "NCMEC"
    )
    assert results["b"]["Status"]["Code"] == 3000 and not results["b"]["IsMatch"]
    assert results["c"]["Status"]["Code"] == 3002 and results["d"]["Status"]["Code"] == 3002


def test_openapi_document(server: server_harness.ServerProcess) -> None:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.rest_port}/openapi.json", timeout=10
    ) as r:
        doc = json.loads(r.read())
    assert doc["openapi"].startswith("3.")
    assert {"/photodna/v1.0/Match", "/photodna/v1.0/MatchHash"} <= set(doc["paths"])
