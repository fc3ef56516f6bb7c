"""`hashmatch audit verify|prune` and `hashmatch report usage`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hashmatch.audit.log import prune, verify
from hashmatch.audit.usage import aggregate_for_ncmec, to_csv, usage
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.core.feedback import FEEDBACK_FILE, FeedbackStore
from hashmatch.core.flood import FLOOD_FILE, FloodStore
from hashmatch.storage.datadir import add_data_dir

AUDIT_FILE = "audit.sqlite3"
REPORTS_FILE = "reports.sqlite3"


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the hash-chained audit trail")
    actions = audit.add_subparsers(dest="action", required=True)
    p = actions.add_parser("verify", help="recompute the chain: exit 1 on any edit, gap or reorder")
    add_data_dir(p)
    p.set_defaults(run=_verify)
    p = actions.add_parser("prune", help="retention: drop records older than --keep-days")
    add_data_dir(p)
    p.add_argument("--keep-days", type=int, required=True)
    p.set_defaults(run=_prune)

    fb = sub.add_parser("feedback", help="per-entry match feedback, for the lists' sources")
    fb_actions = fb.add_subparsers(dest="action", required=True)
    p = fb_actions.add_parser("export", help="JSON lines per entry: confirmed / false positive")
    add_data_dir(p)
    p.add_argument("--bank", required=True)
    p.set_defaults(run=_feedback_export)

    q = sub.add_parser("quarantine", help="entries flagged for matching a flood of content")
    q_actions = q.add_subparsers(dest="action", required=True)
    p = q_actions.add_parser("list", help="flagged entries, JSON lines")
    add_data_dir(p)
    p.set_defaults(run=_quarantine_list)
    p = q_actions.add_parser("release", help="reviewed: report this entry's matches again")
    add_data_dir(p)
    p.add_argument("entry_id", type=int)
    p.set_defaults(run=_quarantine_release)

    report = sub.add_parser("report", help="reports read from the audit trail")
    kinds = report.add_subparsers(dest="kind", required=True)
    p = kinds.add_parser("usage", help="per tenant: images, hashes, matches per bank, reports")
    add_data_dir(p)
    p.add_argument("--from", dest="start", required=True, help="ISO date/time, inclusive")
    p.add_argument("--to", dest="end", required=True, help="ISO date/time, exclusive")
    p.add_argument("--format", choices=["json", "csv", "ncmec-aggregate"], default="json")
    p.set_defaults(run=_usage)


def _feedback_export(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = FeedbackStore(args.data_dir / FEEDBACK_FILE)
    try:
        for row in store.export(args.bank):
            io.json_line(row)
    finally:
        store.close()
    return ExitCode.OK


def _quarantine_list(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = FloodStore(args.data_dir / FLOOD_FILE)
    try:
        for row in store.listing():
            io.json_line(row)
    finally:
        store.close()
    return ExitCode.OK


def _quarantine_release(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = FloodStore(args.data_dir / FLOOD_FILE)
    try:
        released = store.release(args.entry_id)
    finally:
        store.close()
    io.json_line({"entry_id": args.entry_id, "released": released})
    return ExitCode.OK if released else ExitCode.FAILURE


def _verify(args: argparse.Namespace, io: Streams) -> ExitCode:
    result = verify(args.data_dir / AUDIT_FILE)
    io.json_line(result.to_json())
    return ExitCode.OK if result.ok else ExitCode.FAILURE


def _prune(args: argparse.Namespace, io: Streams) -> ExitCode:
    io.json_line({"pruned": prune(args.data_dir / AUDIT_FILE, args.keep_days)})
    return ExitCode.OK


def _usage(args: argparse.Namespace, io: Streams) -> ExitCode:
    rows = usage(args.data_dir / AUDIT_FILE, args.start, args.end, args.data_dir / REPORTS_FILE)
    if args.format == "csv":
        io.stdout.write(to_csv(rows))
    elif args.format == "ncmec-aggregate":
        io.stdout.write(
            json.dumps(aggregate_for_ncmec(rows, args.start, args.end), indent=2) + "\n"
        )
    else:
        for u in rows:
            io.json_line(u.to_json())
    return ExitCode.OK
