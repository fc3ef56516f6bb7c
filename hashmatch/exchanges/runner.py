"""Running syncs: the client for an exchange from its settings and credentials, one sync,
and the schedule a server keeps (`[exchanges] interval_s`)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping

from hashmatch.banks.store import BankStore
from hashmatch.config import ExchangesConfig
from hashmatch.errors import HashmatchError
from hashmatch.exchanges import registry
from hashmatch.exchanges.credentials import read_secrets_file, resolve
from hashmatch.exchanges.model import Exchange
from hashmatch.exchanges.sync import FeedbackPolicy, SyncReport, sync_exchange

log = logging.getLogger(__name__)


class ExchangeRunner:
    def __init__(
        self,
        store: BankStore,
        config: ExchangesConfig,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.store, self.config, self.environ = store, config, environ

    def sync(
        self,
        exchange: Exchange,
        *,
        full: bool = False,
        on_page: Callable[[SyncReport], None] | None = None,
    ) -> SyncReport:
        """Raises ConfigError for missing credentials (nothing was fetched)."""
        secrets = read_secrets_file(self.config.secrets_file)
        credentials = resolve(exchange, secrets, self.environ)
        settings = registry.http_settings(self.config)
        client = registry.open_client(exchange, credentials, settings, self.config)
        try:
            report = sync_exchange(
                self.store,
                exchange,
                client,
                full=full,
                feedback=FeedbackPolicy(max_attempts=self.config.feedback_attempts),
                on_page=on_page,
            )
        finally:
            client.close()
        return report

    def sync_all(self) -> list[SyncReport]:
        """Every exchange not paused, one after another; a failure is recorded in that
        exchange's status and the others go on."""
        reports = []
        try:
            exchanges = [x for x in self.store.list_exchanges() if not x.paused]
        except HashmatchError as exc:
            log.warning("exchanges: cannot list them: %s", exc.message)
            return []
        for x in exchanges:
            try:
                reports.append(self.sync(x))
            except HashmatchError as exc:
                log.warning("exchange %s: %s", x.name, exc.message)
                with contextlib.suppress(HashmatchError):
                    self.store.record_run(x.name, error=exc.message)
        for r in reports:
            if r.error is not None:
                log.warning("exchange %s: sync failed: %s", r.exchange, r.error)
        return reports


class ExchangeSchedule:
    """A server's background syncs: every interval_s, each exchange not paused (replicas
    over one database take turns through the exchange's sync lock)."""

    def __init__(self, runner: ExchangeRunner, interval_s: float) -> None:
        self.runner, self.interval_s = runner, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="exchange-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # a server that failed to start never started it
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.runner.sync_all()
            except Exception:  # never the end of every exchange's syncs
                log.exception("exchanges: a scheduled round failed")
            self._stop.wait(self.interval_s)
