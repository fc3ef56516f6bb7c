"""`hashmatch serve`: the gRPC server on the embedded default (SQLite in ./hashmatch-data)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from hashmatch.audit.log import AuditLog
from hashmatch.commands.audit import AUDIT_FILE, REPORTS_FILE
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.config import Config, WebhooksConfig, load_config
from hashmatch.core.sandbox import ensure_sandbox
from hashmatch.core.webhooks import Target, WebhookNotifier
from hashmatch.errors import ConfigError
from hashmatch.matching.bank_matcher import Matcher
from hashmatch.server.app import serve_forever, start_server
from hashmatch.server.report_servicer import open_outbox
from hashmatch.storage.datadir import matcher_config, open_store, open_tenants
from hashmatch.video.matching import VideoBankMatcher
from hashmatch.video.store import VideoStore


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the gRPC matching server")
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config (see hashmatch.example.toml)"
    )
    p.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="bank database folder (./hashmatch-data)"
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="gRPC address (127.0.0.1:50051)")
    p.add_argument(
        "--metrics-listen", metavar="HOST:PORT", help="Prometheus /metrics ('' disables)"
    )
    p.add_argument("--rest-listen", metavar="HOST:PORT", help="PhotoDNA-style REST face (off)")
    p.add_argument("--backend", choices=["auto", "cpu", "gpu"])
    p.add_argument("--workers", type=int, help="batches hashed at once (default: one per core)")
    p.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> Config:
    overrides: dict[str, dict[str, Any]] = {"": {}, "server": {}, "engine": {}, "batch": {}}
    if args.data_dir is not None:
        overrides[""]["data_dir"] = str(args.data_dir)
    if args.listen is not None:
        overrides["server"]["listen"] = args.listen
    if args.metrics_listen is not None:
        overrides["server"]["metrics_listen"] = args.metrics_listen
    if args.rest_listen is not None:
        overrides["server"]["rest_listen"] = args.rest_listen
    if args.backend is not None:
        overrides["engine"]["backend"] = args.backend
    if args.workers is not None:
        overrides["batch"]["workers"] = args.workers
    return load_config(args.config, overrides)


async def _serve(config: Config, io: Streams) -> None:
    store = open_store(config.data_dir)
    tenants = open_tenants(config.data_dir)
    if config.sandbox.enabled:
        # First start: the public "Test" bank of benign synthetic images (hashmatch.core.sandbox).
        await asyncio.to_thread(ensure_sandbox, store, config.engine)
    matcher = Matcher.open(store, matcher_config(config.data_dir, config.server.pdq_index))
    matcher.start()  # follows the bank change log: updates apply within a second
    videos = VideoStore(store.path, store)
    # Frame entries a crashed `video-bank add` left without their video (see add_video).
    await asyncio.to_thread(videos.sweep_orphans)
    outbox = open_outbox(config.data_dir / REPORTS_FILE, config.reports)
    audit = AuditLog(config.data_dir / AUDIT_FILE)
    webhooks = open_webhooks(config.webhooks)
    # Reports interrupted by a restart: finish the filable ones, fail the rest (off the loop).
    resuming = asyncio.get_running_loop().run_in_executor(None, outbox.resume)
    try:

        def index_size() -> float:
            stats = matcher.stats()
            return float(stats["pdq"] + stats["md5"] + stats["sha256"])

        running = await start_server(
            config,
            matcher,
            store,
            tenants,
            index_size,
            outbox,
            audit,
            lambda: matcher.sequence,
            webhooks,
            video_matcher=VideoBankMatcher(matcher, videos),
        )

        def ready() -> None:
            metrics = f", metrics on port {running.metrics_port}" if running.metrics_port else ""
            rest = f", REST on port {running.rest_port}" if running.rest_port else ""
            io.stderr.write(
                f"hashmatch serving on port {running.port} (data {config.data_dir}, "
                f"backend {running.batcher.backend_name}, decoder {running.batcher.decoder}"
                f"{metrics}{rest})\n"
            )
            io.stderr.flush()

        await serve_forever(running, config.server.grace_seconds, ready)
    finally:
        await resuming
        outbox.close()
        audit.close()  # flushes what is queued
        if webhooks is not None:
            webhooks.close()
        matcher.close()
        videos.close()
        store.close()
        tenants.close()


def open_webhooks(config: WebhooksConfig) -> WebhookNotifier | None:
    """The notifier for the tenants with a webhook URL; secrets from the environment."""
    if not config.urls:
        return None
    targets = {}
    for tenant, url in config.urls.items():
        env = config.secret_env_prefix + tenant.upper().replace("-", "_")
        secret = os.environ.get(env, "")
        if not secret:
            raise ConfigError(f"webhook for tenant {tenant!r}: set its secret in ${env}")
        targets[tenant] = Target(url, secret.encode())
    return WebhookNotifier(
        targets, config.attempts, config.backoff_s, config.timeout_s, config.queue_max
    )


def no_core_dumps() -> None:
    """Images live in this process's memory: a crash must not write them to a core file."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = config_from(args)
    no_core_dumps()
    asyncio.run(_serve(config, io))
    return ExitCode.OK
