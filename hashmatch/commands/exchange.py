"""`hashmatch exchange`: hash exchanges feeding banks (NCMEC, StopNCII, ThreatExchange).

    hashmatch exchange add ncmec-industry --type ncmec --environment industry --bank ncmec \\
        --credentials-env NCMEC_USER,NCMEC_PASSWORD
    hashmatch exchange sync ncmec-industry      # incremental; --full reads all again
    hashmatch exchange status [NAME]

Credentials come from the environment variables named (or the config's secrets file),
never from the database or the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.errors import HashmatchError
from hashmatch.exchanges.model import ExchangeSettings, ExchangeType

if TYPE_CHECKING:
    from collections.abc import Callable

    from hashmatch.banks.store import BankStore
    from hashmatch.core.exchanges import ExchangeOps
    from hashmatch.exchanges.sync import SyncReport


def register(exchange: argparse.ArgumentParser) -> None:
    actions = exchange.add_subparsers(dest="action", required=True)

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_)
        add_data_dir(p)
        return p

    p = action("add", "bind an exchange to a bank and run its first sync")
    p.add_argument("name")
    p.add_argument("--type", required=True, choices=[t.value for t in ExchangeType])
    p.add_argument(
        "--bank",
        help="the bank it fills (default: the exchange's name; made if absent, private to"
        " the operator); one exchange per bank",
    )
    p.add_argument("--no-sync", action="store_true", help="add only (a server syncs it later)")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config ([exchanges])")
    p.add_argument(
        "--environment",
        default="",
        help="ncmec: industry, industry-exploitative, ngo, exploitative, ngo-generative-ai,"
        " ngo-generative-ai-exploitative, law-enforcement, and test-<each>; stopncii and"
        " threatexchange: production",
    )
    p.add_argument("--url", default="", metavar="BASE", help="overrides the environment's URL")
    p.add_argument(
        "--credentials-env",
        required=True,
        metavar="VAR[,VAR]",
        help="names of the variables holding the credentials, in the type's order (ncmec:"
        " user,password; stopncii: subscription key,fetch key[,feedback key]; threatexchange:"
        " access token)",
    )
    p.add_argument(
        "--privacy-group",
        action="append",
        default=[],
        metavar="ID",
        help="threatexchange: a privacy group to follow (repeat for several)",
    )
    p.add_argument(
        "--feedback-upstream",
        action="store_true",
        help="send tenants' verdicts on this bank's matches back to the exchange",
    )
    p.set_defaults(run=_add)
    p = action("list", "the exchanges, one JSON line each")
    p.set_defaults(run=_list)
    p = action("status", "what each exchange last did, in words (--json: as JSON)")
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)
    p = action("sync", "fetch what changed upstream into the bank (resumes where it stopped)")
    p.add_argument("name", nargs="?", help="default: every exchange not paused")
    p.add_argument("--full", action="store_true", help="read everything again from the start")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config ([exchanges])")
    p.set_defaults(run=_sync)
    for name, help_, paused in (
        ("pause", "stop syncing (the bank keeps its entries)", True),
        ("resume", "sync again from where it stopped", False),
    ):
        p = action(name, help_)
        p.add_argument("name")
        p.set_defaults(run=_pause, paused=paused)
    p = action("remove", "unbind the exchange (its bank and entries stay)")
    p.add_argument("name")
    p.set_defaults(run=_remove)


def _ops(args: argparse.Namespace, store: BankStore) -> ExchangeOps:
    from hashmatch.config import load_config
    from hashmatch.core.exchanges import ExchangeOps
    from hashmatch.exchanges.runner import ExchangeRunner

    config = load_config(getattr(args, "config", None), None, os.environ).exchanges
    return ExchangeOps(store, ExchangeRunner(store, config))


def _add(args: argparse.Namespace, io: Streams) -> ExitCode:
    kind = ExchangeType(args.type)
    settings = ExchangeSettings(
        environment=args.environment,
        url=args.url,
        credentials_env=tuple(v.strip() for v in args.credentials_env.split(",") if v.strip()),
        privacy_groups=tuple(args.privacy_group),
        feedback_upstream=args.feedback_upstream,
    )
    store = data_dir(args).open_banks()
    try:
        ops = _ops(args, store)
        x, created = ops.add(args.name, kind, args.bank or args.name, settings)
        io.json_line({**x.to_json(), "bank_created": created})
        if args.no_sync:
            return ExitCode.OK
        report = ops.sync(x.name, on_page=_progress(io))
        io.json_line(report.to_json())
    finally:
        store.close()
    return ExitCode.FAILURE if report.error is not None else ExitCode.OK


def _progress(io: Streams) -> Callable[[SyncReport], None]:
    """A line on stderr every 10 pages: a first sync of a large list takes minutes."""

    def show(r: SyncReport) -> None:
        if r.pages % 10 == 0:
            io.stderr.write(
                f"hashmatch: {r.exchange}: {r.pages} pages, {r.added:,} added,"
                f" {r.removed:,} removed\n"
            )

    return show


def _list(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_banks()
    try:
        for x in store.list_exchanges():
            io.json_line(x.to_json())
    finally:
        store.close()
    return ExitCode.OK


def _status(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.core.exchanges import describe

    store = data_dir(args).open_banks()
    try:
        found = [store.get_exchange(args.name)] if args.name else store.list_exchanges()
    finally:
        store.close()
    for x in found:
        if args.json:
            io.json_line(x.to_json())
        else:
            io.stdout.write(describe(x) + "\n")
    return ExitCode.OK


def _sync(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_banks()
    failed = False
    try:
        ops = _ops(args, store)
        every = [x.name for x in store.list_exchanges() if not x.paused]
        if not args.name and not every:
            io.stderr.write("hashmatch: no exchange to sync (none added, or all paused)\n")
        for name in [args.name] if args.name else every:
            try:
                report = ops.sync(name, full=args.full, on_page=_progress(io))
            except HashmatchError as exc:
                if args.name:
                    raise
                # Every exchange: one without its credentials does not stop the others.
                io.stderr.write(f"hashmatch: {name}: {exc.message}\n")
                with contextlib.suppress(HashmatchError):
                    store.record_run(name, error=exc.message)
                failed = True
                continue
            io.json_line(report.to_json())
            if report.busy:
                io.stderr.write(f"hashmatch: {name}: another process is syncing it now\n")
            failed = failed or report.error is not None or report.busy
    finally:
        store.close()
    return ExitCode.FAILURE if failed else ExitCode.OK


def _pause(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_banks()
    try:
        io.json_line(store.set_exchange_paused(args.name, args.paused).to_json())
    finally:
        store.close()
    return ExitCode.OK


def _remove(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_banks()
    try:
        store.remove_exchange(args.name)
        io.json_line({"removed": args.name})
    finally:
        store.close()
    return ExitCode.OK
