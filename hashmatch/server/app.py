"""Builds and runs the gRPC server: MatchService, health, reflection, metrics, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hashmatch.audit.log import AuditEvent, AuditLog
from hashmatch.banks.store import BankStore
from hashmatch.config import Config, ServerConfig
from hashmatch.core.auditing import Auditor
from hashmatch.core.batcher import Batcher
from hashmatch.core.feedback import FEEDBACK_FILE, FeedbackStore
from hashmatch.core.flood import FLOOD_FILE, FloodMonitor, FloodStore
from hashmatch.core.metrics import Metrics
from hashmatch.core.service import HashmatchService
from hashmatch.core.webhooks import WebhookNotifier
from hashmatch.errors import ConfigError
from hashmatch.matching.model import Matcher
from hashmatch.proto import admin_pb, admin_rpc, bank_pb, bank_rpc, pb, report_pb, report_rpc, rpc
from hashmatch.reports.outbox import ReportOutbox
from hashmatch.rest.app import create_app
from hashmatch.rest.auth import tenancy_auth
from hashmatch.rest.server import RestServer
from hashmatch.server.admin_servicer import AdminServicer
from hashmatch.server.auth import AuthInterceptor
from hashmatch.server.bank_servicer import BankServicer
from hashmatch.server.report_servicer import ReportServicer
from hashmatch.server.servicer import MatchServicer
from hashmatch.server.video_servicer import VIDEO_SERVICE, add_video_service
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.service import Tenancy
from hashmatch.tenancy.store import TenantStore
from hashmatch.video.matching import VideoBankMatcher

log = logging.getLogger(__name__)

MATCH_SERVICE = pb.DESCRIPTOR.services_by_name["MatchService"].full_name
BANK_SERVICE = bank_pb.DESCRIPTOR.services_by_name["BankService"].full_name
ADMIN_SERVICE = admin_pb.DESCRIPTOR.services_by_name["AdminService"].full_name
REPORT_SERVICE = report_pb.DESCRIPTOR.services_by_name["ReportService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    metrics_port: int | None
    batcher: Batcher
    health: health.aio.HealthServicer
    metrics: Metrics
    tenancy: Tenancy
    _metrics_http: Any = None
    rest: RestServer | None = None
    rest_port: int | None = None

    async def stop(self, grace: float) -> None:
        """Graceful: stop taking calls, let in-flight ones finish (up to grace), drain."""
        await self.health.enter_graceful_shutdown()
        if self.rest is not None:
            await self.rest.stop()
        await self.server.stop(grace)
        await self.batcher.close()
        self.tenancy.flush()  # last-used times not yet written
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


def _flood_flagged(audit: AuditLog | None, entry: int, bank: str, distinct: int) -> None:
    log.warning(
        "flood quarantine: entry %d of bank %r matched %d distinct contents", entry, bank, distinct
    )
    if audit is not None:
        audit.append(
            AuditEvent(rpc="FloodQuarantine", items=distinct, matches_by_bank={bank: distinct},
                       codes={"flagged": 1}, tracking_id=f"entry-{entry}")
        )  # fmt: skip


async def start_server(
    config: Config,
    matcher: Matcher,
    store: BankStore,
    tenants: TenantStore,
    index_size: Callable[[], float] = lambda: 0.0,
    outbox: ReportOutbox | None = None,
    audit: AuditLog | None = None,
    bank_sequence: Callable[[], int] = lambda: -1,
    webhooks: WebhookNotifier | None = None,
    video_matcher: VideoBankMatcher | None = None,
) -> RunningServer:
    metrics = Metrics()
    tenancy = Tenancy(tenants, config.auth)
    limits = TenantLimits(tenants, config.auth, on_throttle=metrics.throttled)
    if not tenancy.auth_enabled():
        log.warning(
            "auth is OFF: no API key exists and [auth] required is false, so every caller"
            " acts as the operator and sees every bank. Create the first key with"
            " `hashmatch admin bootstrap` (auth then stays on), or set [auth] required = true."
        )
    creds = _credentials(config.server)
    # Bound first: a port in use fails start-up before anything else is running.
    http, metrics_port = None, None
    if config.server.metrics_listen:
        http, metrics_port = metrics.serve(config.server.metrics_listen)
    # Dihedral hashes are computed per batch, when one of its items asks for them.
    batcher = Batcher(config.engine, config.batch, metrics.on_batch, metrics.on_drop)
    batcher.start()
    metrics.backend.labels(batcher.backend_name, batcher.backend_device, batcher.decoder).set(1)
    metrics.watch(lambda: batcher.depth, index_size)
    flood = None
    if config.flood.enabled:
        flood = FloodMonitor(
            config.flood,
            FloodStore(config.data_dir / FLOOD_FILE),
            on_flag=lambda entry, bank, n: _flood_flagged(audit, entry, bank, n),
        )
    core = HashmatchService(batcher, matcher, config.server.max_items_per_request, flood)
    auditor = Auditor(audit, bank_sequence)

    limit = config.server.max_message_bytes
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(tenancy, limits, metrics, auditor)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # A second server on a port in use must fail, not share it silently.
            ("grpc.so_reuseport", 0),
        ],
    )
    rpc.add_MatchServiceServicer_to_server(  # type: ignore[no-untyped-call]
        MatchServicer(core, metrics, config.server.stream_window, auditor, limits, webhooks), server
    )
    bank_rpc.add_BankServiceServicer_to_server(
        BankServicer(store, auditor, FeedbackStore(config.data_dir / FEEDBACK_FILE)), server
    )  # type: ignore[no-untyped-call]
    admin_rpc.add_AdminServiceServicer_to_server(AdminServicer(tenancy), server)  # type: ignore[no-untyped-call]
    names = [MATCH_SERVICE, BANK_SERVICE, ADMIN_SERVICE]
    add_video_service(server, config, video_matcher, auditor, limits)
    names.append(VIDEO_SERVICE)
    if outbox is not None:
        report_rpc.add_ReportServiceServicer_to_server(ReportServicer(outbox, auditor), server)  # type: ignore[no-untyped-call]
        names.append(REPORT_SERVICE)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    try:
        if creds is None:
            port = server.add_insecure_port(config.server.listen)
        else:
            port = server.add_secure_port(config.server.listen, creds)
    except RuntimeError as exc:
        if http is not None:
            http.shutdown()
        await batcher.close()
        await server.stop(None)
        raise ConfigError(f"cannot listen on {config.server.listen}: {exc}") from None
    await server.start()
    running = RunningServer(
        server, port, metrics_port, batcher, health_servicer, metrics, tenancy, http
    )
    if config.server.rest_listen:
        running.rest = RestServer(
            create_app(core, tenancy_auth(tenancy, limits), outbox=outbox, auditor=auditor),
            config.server.rest_listen,
        )
        running.rest_port = await running.rest.start()
    return running


async def serve_forever(running: RunningServer, grace: float, ready: Callable[[], None]) -> None:
    """Until SIGTERM or SIGINT, then a graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready()
    await stop.wait()
    log.info("shutting down: draining in-flight work (grace %.0fs)", grace)
    await running.stop(grace)
