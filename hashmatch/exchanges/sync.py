"""One sync of one exchange: pages from its checkpoint, each applied to the bank in one
transaction with the checkpoint after it (a kill at any moment loses nothing and repeats
nothing on the rerun), then the verdicts queued for upstream."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hashmatch.banks.model import WriteReport
from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter, HashmatchError
from hashmatch.exchanges.client import ExchangeClient
from hashmatch.exchanges.model import Exchange, Progress, UpstreamError

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    exchange: str
    pages: int = 0
    added: int = 0
    revived: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    feedback_sent: int = 0
    seconds: float = 0.0
    error: str | None = None
    feedback_error: str | None = None
    busy: bool = False  # another process was syncing this exchange: nothing done

    def add(self, page: WriteReport) -> None:
        self.pages += 1
        self.added += page.added
        self.revived += page.revived
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.removed += page.removed

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class FeedbackPolicy:
    max_attempts: int = 10
    batch: int = 100
    errors: list[str] = field(default_factory=list)


def sync_exchange(
    store: BankStore,
    exchange: Exchange,
    client: ExchangeClient,
    *,
    full: bool = False,
    feedback: FeedbackPolicy | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Raises nothing for an upstream failure: it is recorded in the exchange's status and
    the report (`error`); the pages before it stay applied."""
    if exchange.paused:
        raise BadParameter(f"exchange {exchange.name!r} is paused: resume it first")
    report = SyncReport(exchange.name)
    started = time.monotonic()
    with store.sync_lock(exchange.name) as mine:
        if not mine:
            report.busy = True
            return report
        checkpoint = None if full else store.get_exchange(exchange.name).checkpoint
        if full:
            store.reset_checkpoint(exchange.name)
        try:
            for page in client.fetch(checkpoint):
                progress = Progress(exchange.name, page.checkpoint, page.upstream_time)
                report.add(store.import_entries(exchange.bank, page.events, progress=progress))
                if on_page is not None:
                    on_page(report)
            if exchange.settings.feedback_upstream:
                _send_feedback(store, exchange, client, feedback or FeedbackPolicy(), report)
        except (UpstreamError, HashmatchError) as exc:
            # Upstream, or the database (Unavailable), or the exchange removed meanwhile.
            report.error = str(exc)
        except Exception as exc:  # a response no client foresaw: this run fails, no other
            log.exception("exchange %s: sync failed", exchange.name)
            report.error = f"internal error reading upstream ({type(exc).__name__})"
        report.skipped = client.skipped
        report.seconds = time.monotonic() - started
        with contextlib.suppress(HashmatchError):  # a database still away: the report says it
            store.record_run(exchange.name, error=report.error, skipped=report.skipped)
    return report


def _send_feedback(
    store: BankStore,
    exchange: Exchange,
    client: ExchangeClient,
    policy: FeedbackPolicy,
    report: SyncReport,
) -> None:
    """Queued verdicts, a batch at a time; a failed batch is counted against its verdicts
    and tried again next sync (up to max_attempts, then left marked with its error)."""
    seen: set[int] = set()
    while True:
        queued = [
            q
            for q in store.pending_feedback(exchange.name, policy.batch + len(seen))
            if q.id not in seen and q.attempts < policy.max_attempts
        ][: policy.batch]
        if not queued:
            return
        ids = [q.id for q in queued]
        seen.update(ids)
        try:
            client.send_feedback([q.feedback for q in queued])
        except UpstreamError as exc:
            store.feedback_sent(ids, str(exc))
            report.feedback_error = str(exc)
            return
        store.feedback_sent(ids, None)
        report.feedback_sent += len(ids)
