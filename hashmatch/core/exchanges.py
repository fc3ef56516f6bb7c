"""Exchanges as every face sees them (CLI, gRPC ExchangeService, the console): one place
that checks a new exchange's settings, runs a sync and says an exchange's state in words."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from hashmatch.banks import records
from hashmatch.banks.model import BankSettings, check_bank_name
from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter, HashmatchError, NotFound
from hashmatch.exchanges import registry
from hashmatch.exchanges.model import (
    Exchange,
    ExchangeSettings,
    ExchangeType,
    check_exchange_name,
)
from hashmatch.exchanges.runner import ExchangeRunner
from hashmatch.exchanges.sync import SyncReport
from hashmatch.matching.model import SANDBOX_BANK

# What an exchange writes, every tenant the bank is shared with matches: the operator's.
_OPERATOR_BANK = "an exchange feeds a bank of the operator's (no owner, no ':' in its name)"


def exchange_type(name: str) -> ExchangeType:
    try:
        return ExchangeType(name)
    except ValueError:
        choices = ", ".join(t.value for t in ExchangeType)
        raise BadParameter(f"exchange type {name!r}: one of {choices}") from None


class ExchangeOps:
    def __init__(self, store: BankStore, runner: ExchangeRunner) -> None:
        self.store, self.runner = store, runner

    def add(
        self, name: str, type: ExchangeType, bank: str, settings: ExchangeSettings
    ) -> tuple[Exchange, bool]:
        """The exchange, and whether its bank was made for it (private to the operator,
        PDQ threshold 31: `bank update` changes it)."""
        registry.check(type, settings)
        check_exchange_name(name)
        check_bank_name(bank)
        if ":" in bank:
            raise BadParameter(_OPERATOR_BANK)
        if bank == SANDBOX_BANK:  # every tenant's integration tests expect its samples alone
            raise BadParameter(f"{bank!r} is the sandbox's bank of benign samples")
        created = False
        try:
            if self.store.get_bank(bank).owner:
                raise BadParameter(_OPERATOR_BANK)
        except NotFound:
            self.store.create_bank(bank, BankSettings())
            created = True
        try:
            return self.store.add_exchange(name, type, bank, settings), created
        except HashmatchError:
            if created:  # no bank left behind by an exchange that was refused
                self.store.delete_bank(bank)
            raise

    def list(self) -> list[Exchange]:
        return self.store.list_exchanges()

    def get(self, name: str) -> Exchange:
        return self.store.get_exchange(name)

    def sync(
        self,
        name: str,
        *,
        full: bool = False,
        on_page: Callable[[SyncReport], None] | None = None,
    ) -> SyncReport:
        return self.runner.sync(self.store.get_exchange(name), full=full, on_page=on_page)

    def set_paused(self, name: str, paused: bool) -> Exchange:
        return self.store.set_exchange_paused(name, paused)

    def remove(self, name: str) -> None:
        self.store.remove_exchange(name)


def describe(x: Exchange, now: float | None = None) -> str:
    """An exchange's status in words (`exchange status`, ExchangeService, the console)."""
    now = time.time() if now is None else now

    def ago(iso: str | None) -> str:
        if iso is None:
            return "never"
        seconds = now - records.timestamp(iso)
        return f"{iso} ({_span(seconds)} ago)"

    s = x.status
    where = x.settings.url or x.settings.environment
    newest = "none yet"
    if s.upstream_time is not None:
        try:
            stamp = datetime.fromtimestamp(s.upstream_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            newest = ago(stamp)
        except (OverflowError, OSError, ValueError):  # written by an older hashmatch
            newest = "out of range"
    lines = [
        f"{x.name}: {x.type.value} ({where}) -> bank {x.bank}" + (" [PAUSED]" if x.paused else ""),
        f"  last success (upstream read to its end): {ago(s.last_success_at)}",
        f"  newest upstream record: {newest}",
        f"  entries added {s.added:,}, removed {s.removed:,}; malformed records skipped"
        f" {s.skipped:,}; failed runs {s.errors:,}",
    ]
    if s.last_error is not None and (s.last_success_at or "") < (s.last_error_at or ""):
        lines.append(f"  LAST RUN FAILED {ago(s.last_error_at)}: {s.last_error}")
    if x.settings.feedback_upstream:
        lines.append(f"  verdicts waiting to go upstream: {s.feedback_pending:,}")
        if s.feedback_error:
            lines.append(f"  SENDING VERDICTS FAILED: {s.feedback_error}")
    return "\n".join(lines)


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
