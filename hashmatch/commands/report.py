"""`hashmatch report usage`: per tenant, images, hashes, matches per bank and reports
filed, read from the audit trail (and NCMEC's per-customer aggregate)."""

from __future__ import annotations

import argparse
import json

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir


def register(report: argparse.ArgumentParser) -> None:
    kinds = report.add_subparsers(dest="kind", required=True)
    p = kinds.add_parser("usage", help="per tenant: images, hashes, matches per bank, reports")
    add_data_dir(p)
    p.add_argument("--from", dest="start", required=True, help="ISO date/time, inclusive")
    p.add_argument("--to", dest="end", required=True, help="ISO date/time, exclusive")
    p.add_argument("--format", choices=["json", "csv", "ncmec-aggregate"], default="json")
    p.set_defaults(run=_usage)


def _usage(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.audit.usage import aggregate_for_ncmec, to_csv, usage

    data = data_dir(args)
    filed = None
    if data.database_url or data.reports.exists():
        tables = data.open_outbox_tables()
        try:
            filed = tables.filed_by_tenant(args.start, args.end)
        finally:
            tables.close()
    audit = data.open_audit_tables()
    try:
        rows = usage(audit, args.start, args.end, filed)
    finally:
        audit.close()
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
