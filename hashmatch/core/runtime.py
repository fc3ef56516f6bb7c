"""The composition root: one object that opens the stores and wires the parts.

`Runtime.open(config)` opens every store of the data dir and builds the matcher (from its
snapshot when it can); `start()` runs the background parts (batcher, change-log follower,
report resumption) and `warm_up()` compiles the kernels with a tiny batch, so a server
says SERVING only once its first call will be fast. Faces (gRPC, REST) take the Runtime
and call its services; nothing else builds these parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from hashmatch.audit.log import AuditEvent, AuditLog
from hashmatch.banks.model import DistancePolicy, SignalType
from hashmatch.banks.store import BankStore
from hashmatch.config import Config
from hashmatch.core.admission import Admission
from hashmatch.core.batcher import Batcher
from hashmatch.core.calls import CallRecorder
from hashmatch.core.effects import Effects
from hashmatch.core.exchanges import ExchangeOps
from hashmatch.core.false_positives import FalsePositives
from hashmatch.core.feedback import FeedbackService
from hashmatch.core.flood import FloodMonitor
from hashmatch.core.metrics import Metrics
from hashmatch.core.probing import ProbeDetector
from hashmatch.core.sandbox import ensure_sandbox
from hashmatch.core.service import MatchService
from hashmatch.core.video import VideoService
from hashmatch.core.webhooks import WebhookNotifier, open_webhooks
from hashmatch.errors import ConfigError, InternalError
from hashmatch.exchanges.metrics import ExchangeCollector
from hashmatch.exchanges.runner import ExchangeRunner, ExchangeSchedule
from hashmatch.hashing.backend import select_backend
from hashmatch.hashing.signature import Signature
from hashmatch.matching import shared_snapshot
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
from hashmatch.matching.follower import ChangeFollower
from hashmatch.matching.model import HashQuery
from hashmatch.reports.outbox import ReportOutbox
from hashmatch.storage.datadir import DataDir
from hashmatch.storage.feedback_store import FeedbackStore
from hashmatch.storage.flood_store import FloodStore
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.limits import SharedBuckets, TenantLimits
from hashmatch.tenancy.service import Tenancy
from hashmatch.tenancy.store import TenantStore
from hashmatch.video.hasher import VideoHasher
from hashmatch.video.matching import VideoBankMatcher
from hashmatch.video.store import VideoStore

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.2  # changes committed anywhere are matchable within a second


@dataclass
class Readiness:
    """What every face's health check says: True once warmed up, False while draining."""

    ready: bool = False


@dataclass
class Runtime:
    config: Config
    data: DataDir
    store: BankStore
    tenants: TenantStore
    videos: VideoStore
    matcher: BankMatcher
    follower: ChangeFollower
    outbox: ReportOutbox
    audit: AuditLog
    feedback_store: FeedbackStore
    feedback: FeedbackService
    access: BankAccess
    flood_store: FloodStore
    metrics: Metrics
    tenancy: Tenancy
    limits: TenantLimits
    calls: CallRecorder
    admission: Admission
    webhooks: WebhookNotifier | None
    batcher: Batcher
    service: MatchService
    video: VideoService
    exchanges: ExchangeOps
    schedule: ExchangeSchedule | None
    readiness: Readiness = field(default_factory=Readiness)
    _resuming: asyncio.Future[object] | None = None

    @classmethod
    def open(cls, config: Config, environ: Mapping[str, str] = os.environ) -> Runtime:
        """Everything opened and wired; nothing running yet (see start)."""
        key_file = config.storage.audit_key_file
        data = DataDir(
            config.data_dir, config.storage.database_url, Path(key_file) if key_file else None
        )
        local_tenants = not config.storage.database_url
        if local_tenants and data.operator_key.exists() and not data.tenants.exists():
            # Keys were made here once: starting without them would answer everyone as
            # the operator (a partial restore, say). Refuse rather than fail open.
            raise ConfigError(
                f"{data.operator_key} exists but {data.tenants} does not: restore the"
                " tenants database (or remove operator.key to start over without keys)"
            )
        store = data.open_banks()
        tenants = data.open_tenants()
        if config.sandbox.enabled:
            # First start: the public "Test" bank of benign synthetic images.
            ensure_sandbox(store, config.engine)
        matcher_config = MatcherConfig(
            data.snapshot,
            pdq_index=config.server.pdq_index,
            max_pdq_threshold=config.banks.max_pdq_threshold,
            max_matches=config.banks.max_matches,
        )
        shared = config.server.shared_snapshot
        if shared and not data.snapshot.exists():  # a new replica: start where others are
            data.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if shared_snapshot.fetch(shared, data.snapshot):
                log.info("index snapshot fetched from %s", shared)
        matcher = BankMatcher.open(store, matcher_config)
        how = "loaded from its snapshot" if matcher.loaded_from_snapshot else "built from the banks"
        log.info("index of %d entries %s (sequence %d)", matcher.size, how, matcher.sequence)
        publish = functools.partial(shared_snapshot.publish, url=shared) if shared else None
        follower = ChangeFollower(matcher, FOLLOW_INTERVAL_S, config.server.snapshot_every, publish)
        videos = data.open_videos(store)
        audit = data.open_audit()
        metrics = Metrics()
        tenancy = Tenancy(tenants, config.auth, on_verify=metrics.key_verifications.inc)
        # Replicas of one database share the rate buckets in it.
        buckets = tenants if isinstance(tenants, SharedBuckets) else None
        limits = TenantLimits(tenants, config.auth, on_throttle=metrics.throttled, shared=buckets)
        calls = CallRecorder(audit, lambda: matcher.sequence, metrics.bank_not_found)
        webhooks = open_webhooks(config.webhooks, environ)
        flood_store = data.open_flood()
        flood = None
        if config.flood.enabled:
            flood = FloodMonitor(
                config.flood, flood_store,
                on_flag=lambda entry, bank, n: _flood_flagged(audit, entry, bank, n),
                digest_key=audit.derived_key("flood sightings"),
            )  # fmt: skip
        feedback_store = data.open_feedback()
        false_positives = FalsePositives(feedback_store)
        # Dihedral hashes are computed per batch, when one of its items asks for them.
        batcher = Batcher(config.engine, config.batch, metrics.on_batch, metrics.on_drop)
        probes = None
        if config.probe.enabled:
            probes = ProbeDetector(
                config.probe, on_flag=lambda t, n: _probe_flagged(audit, metrics, t, n)
            )
        service = MatchService(
            batcher, matcher, limits, Effects(metrics, webhooks),
            config.server.max_items_per_request, flood, false_positives, probes,
        )  # fmt: skip
        feedback = FeedbackService(store, feedback_store, false_positives, service)
        access = BankAccess(
            store, config.banks.max_pdq_threshold, DistancePolicy(config.banks.distance_policy)
        )
        hasher = VideoHasher(config.video, select_backend(config.engine))
        video_matcher = VideoBankMatcher(matcher, videos, config.video.max_frame_pairs)
        video = VideoService(config.video, hasher, video_matcher, service)
        metrics.backend.labels(batcher.backend_name, batcher.backend_device, batcher.decoder).set(1)
        metrics.watch(lambda: batcher.depth, lambda: float(matcher.size))
        metrics.registry.register(ExchangeCollector(store))
        runner = ExchangeRunner(store, config.exchanges, environ)
        schedule = None
        if config.exchanges.interval_s > 0:
            schedule = ExchangeSchedule(runner, config.exchanges.interval_s)
        return cls(
            config, data, store, tenants, videos, matcher, follower,
            data.open_outbox(config.reports), audit, feedback_store, feedback, access, flood_store,
            metrics, tenancy, limits, calls, Admission(tenancy, limits, metrics, calls),
            webhooks, batcher, service, video, ExchangeOps(store, runner), schedule,
        )  # fmt: skip

    async def start(self) -> None:
        """The background parts: batcher, change-log follower, reports a restart left."""
        self.batcher.start()
        self.follower.start()
        # Frame entries a crashed `video-bank add` left without their video.
        await asyncio.to_thread(self.videos.sweep_orphans)
        # Reports interrupted by a restart: finish the filable ones, fail the rest.
        self._resuming = asyncio.get_running_loop().run_in_executor(None, self.outbox.resume)
        if self.schedule is not None:
            self.schedule.start()

    async def warm_up(self) -> None:
        """One tiny batch through every stage (JPEG and PNG decode, the resample and DCT
        kernels, the index search), so the first caller does not pay the compilation."""
        results = await self.batcher.submit_many(_warm_images(), wait=True, dihedral=True)
        bad = [r for r in results if not isinstance(r, Signature)]
        if bad:
            raise InternalError(f"warm-up batch did not hash: {bad[0]}")
        query = HashQuery(SignalType.PDQ, (bytes(32),))
        await asyncio.to_thread(self.matcher.match, [query], None, (), 0)

    async def stop(self, timeout: float | None = None) -> None:
        """Drain what was admitted (for up to `timeout` seconds), then stop the
        background parts (the snapshot written)."""
        await self.batcher.close(timeout)
        self.tenancy.flush()  # last-used times not yet written
        self.limits.flush()  # quota charged ahead and not used (kept high where it cannot)
        if self._resuming is not None:  # reports a restart left: resumed next time if cut
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._resuming), timeout)
        if self.schedule is not None:  # a sync cut here resumes from its last page
            await asyncio.to_thread(self.schedule.stop, 10.0 if timeout is None else timeout)
        await asyncio.to_thread(self.follower.stop)

    def close(self) -> None:
        self.admission.close()
        self.outbox.close()
        self.audit.close()  # flushes what is queued
        if self.webhooks is not None:
            self.webhooks.close()
        self.feedback_store.close()
        self.flood_store.close()
        self.matcher.close()
        self.videos.close()
        self.store.close()
        self.tenants.close()


def _warm_images() -> list[bytes]:
    """A JPEG tall and wide (the planes are resampled row by row, or made into a luma
    plane first for a short, wide image) and a PNG."""
    rng = np.random.default_rng(0)
    out = []
    for fmt, shape in (("JPEG", (64, 48, 3)), ("JPEG", (48, 64, 3)), ("PNG", (48, 64, 3))):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buf, fmt)
        out.append(buf.getvalue())
    return out


def _flood_flagged(audit: AuditLog, entry: int, bank: str, distinct: int) -> None:
    log.warning(
        "flood quarantine: entry %d of bank %r matched %d distinct contents", entry, bank, distinct
    )
    audit.append(
        AuditEvent(rpc="FloodQuarantine", items=distinct, matches_by_bank={bank: distinct},
                   codes={"flagged": 1}, tracking_id=f"entry-{entry}")
    )  # fmt: skip


def _probe_flagged(audit: AuditLog, metrics: Metrics, tenant: str, near: int) -> None:
    log.warning("probe detection: tenant %r sent %d near-identical hash queries", tenant, near)
    metrics.probe_flagged(tenant)
    audit.append(AuditEvent(rpc="ProbeSuspected", tenant=tenant, items=near, codes={"flagged": 1}))
