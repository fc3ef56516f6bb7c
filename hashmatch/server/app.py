"""Builds the gRPC server over a Runtime: services, health, reflection, metrics, and
the readiness it reports.

Health: the standard service answers per service name; "" and every hashmatch service
say NOT_SERVING until the runtime has warmed up (kernels compiled, one tiny batch hashed)
and again while draining; the name "liveness" says SERVING as long as the process runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hashmatch.config import ServerConfig
from hashmatch.core.admission import is_loopback
from hashmatch.core.oversight import Oversight
from hashmatch.core.runtime import Runtime
from hashmatch.errors import ConfigError
from hashmatch.proto import (
    admin_pb,
    admin_rpc,
    bank_pb,
    bank_rpc,
    exchange_pb,
    exchange_rpc,
    pb,
    report_pb,
    report_rpc,
    rpc,
    video_rpc,
)
from hashmatch.server.admin_servicer import AdminServicer
from hashmatch.server.auth import AuthInterceptor
from hashmatch.server.bank_servicer import BankServicer
from hashmatch.server.exchange_servicer import ExchangeServicer
from hashmatch.server.reflection import enable_reflection
from hashmatch.server.report_servicer import ReportServicer
from hashmatch.server.servicer import MatchServicer
from hashmatch.server.video_servicer import VIDEO_SERVICE, VideoServicer

log = logging.getLogger(__name__)

MATCH_SERVICE = pb.DESCRIPTOR.services_by_name["MatchService"].full_name
BANK_SERVICE = bank_pb.DESCRIPTOR.services_by_name["BankService"].full_name
ADMIN_SERVICE = admin_pb.DESCRIPTOR.services_by_name["AdminService"].full_name
REPORT_SERVICE = report_pb.DESCRIPTOR.services_by_name["ReportService"].full_name
EXCHANGE_SERVICE = exchange_pb.DESCRIPTOR.services_by_name["ExchangeService"].full_name
SERVICES = (
    MATCH_SERVICE, BANK_SERVICE, ADMIN_SERVICE, VIDEO_SERVICE, REPORT_SERVICE, EXCHANGE_SERVICE
)  # fmt: skip
LIVENESS = "liveness"


@dataclass
class RunningServer:
    runtime: Runtime
    server: grpc.aio.Server
    port: int
    metrics_port: int | None
    health: health.aio.HealthServicer
    _metrics_http: Any = None

    async def set_ready(self, ready: bool = True) -> None:
        status = health_pb2.HealthCheckResponse
        for name in ("", *SERVICES):
            await self.health.set(name, status.SERVING if ready else status.NOT_SERVING)

    async def drain(self) -> None:
        """Health says NOT_SERVING (load balancers stop sending), calls still answered."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        """Stop taking calls, let in-flight ones finish (up to grace)."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self._metrics_http is not None:
            self._metrics_http.shutdown()


def _credentials(cfg: ServerConfig) -> grpc.ServerCredentials | None:
    if not cfg.tls_cert:
        return None
    try:
        key, cert = Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes()
        ca = Path(cfg.tls_client_ca).read_bytes() if cfg.tls_client_ca else None
    except OSError as exc:
        raise ConfigError(f"TLS files: {exc}") from None
    return grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=ca is not None)


def _host(listen: str) -> str:
    host = listen.rpartition(":")[0].strip("[]")
    return host or "0.0.0.0"


def _warn_when_exposed(cfg: ServerConfig, tls: bool) -> None:
    """Keys travel in metadata: in clear text beyond this machine they can be read."""
    if not tls and not is_loopback(_host(cfg.listen)):
        log.warning(
            "listening on %s without TLS: API keys and images cross the network in clear"
            " text; set [server] tls_cert and tls_key (or terminate TLS in front)",
            cfg.listen,
        )
    if cfg.metrics_listen and not is_loopback(_host(cfg.metrics_listen)):
        log.warning(
            "metrics on %s answer anyone who can reach them (they name tenants): keep them"
            " on a private network",
            cfg.metrics_listen,
        )


def _add_services(server: grpc.aio.Server, runtime: Runtime) -> None:
    calls, cfg = runtime.calls, runtime.config.server
    match = MatchServicer(runtime.service, calls, runtime.metrics, cfg.stream_window)
    rpc.add_MatchServiceServicer_to_server(match, server)  # type: ignore[no-untyped-call]
    bank = BankServicer(runtime.store, runtime.access, calls, runtime.feedback)
    bank_rpc.add_BankServiceServicer_to_server(bank, server)  # type: ignore[no-untyped-call]
    admin = AdminServicer(runtime.tenancy, calls, Oversight.of(runtime))
    admin_rpc.add_AdminServiceServicer_to_server(admin, server)  # type: ignore[no-untyped-call]
    video = VideoServicer(runtime.video, calls)
    video_rpc.add_VideoServiceServicer_to_server(video, server)  # type: ignore[no-untyped-call]
    report = ReportServicer(runtime.outbox, calls)
    report_rpc.add_ReportServiceServicer_to_server(report, server)  # type: ignore[no-untyped-call]
    exchange = ExchangeServicer(runtime.exchanges, calls)
    exchange_rpc.add_ExchangeServiceServicer_to_server(exchange, server)  # type: ignore[no-untyped-call]


async def start_server(runtime: Runtime) -> RunningServer:
    """Listening, answering health and reflection; NOT_SERVING until set_ready()."""
    config = runtime.config
    if not runtime.tenancy.auth_enabled():
        log.warning(
            "auth is OFF: no API key exists and [auth] required is false, so every caller"
            " acts as the operator and sees every bank. Create the first key with"
            " `hashmatch admin bootstrap` (auth then stays on), or set [auth] required = true."
        )
    creds = _credentials(config.server)
    _warn_when_exposed(config.server, tls=creds is not None)
    # Bound first: a port in use fails start-up before anything else is running.
    http, metrics_port = None, None
    if config.server.metrics_listen:
        http, metrics_port = runtime.metrics.serve(config.server.metrics_listen)
    limit = config.server.max_message_bytes
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(runtime.admission)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # A second server on a port in use must fail, not share it silently.
            ("grpc.so_reuseport", 0),
        ],
    )
    _add_services(server, runtime)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    enable_reflection(server, [*SERVICES, health_name])
    try:
        if creds is None:
            port = server.add_insecure_port(config.server.listen)
        else:
            port = server.add_secure_port(config.server.listen, creds)
    except RuntimeError as exc:
        if http is not None:
            http.shutdown()
        await server.stop(None)
        raise ConfigError(f"cannot listen on {config.server.listen}: {exc}") from None
    await server.start()
    return RunningServer(runtime, server, port, metrics_port, health_servicer, http)
