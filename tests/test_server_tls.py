"""TLS: the server with a certificate answers TLS clients and refuses plaintext ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests import server_harness

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "server.key", tmp / "server.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls_server(tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    config = tmp_path / "tls.toml"
    config.write_text(f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.port}", creds) as channel:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(srv.target) as plain, pytest.raises(grpc.RpcError) as exc:
            health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert exc.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        assert srv.stop() == 0
