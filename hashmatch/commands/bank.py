"""`hashmatch bank ...`: create, list, inspect, update, delete banks; import, export, add
and remove entries. Output is JSON (one object, or one line per item)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hashmatch.banks.formats import Format
from hashmatch.banks.importer import export_bank, import_file
from hashmatch.banks.model import (
    BankKind,
    BankSettings,
    DistancePolicy,
    NewEntry,
    SignalType,
    Visibility,
    guess_signal,
)
from hashmatch.banks.store import BankStore
from hashmatch.banks.te_format import Checksums
from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.config import BanksConfig
from hashmatch.errors import BadParameter


def register(bank: argparse.ArgumentParser) -> None:
    actions = bank.add_subparsers(dest="action", required=True)

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_)
        add_data_dir(p)
        return p

    p = action("create", "create a bank")
    p.add_argument("name")
    _settings_args(p, creating=True)
    p.set_defaults(run=_create)

    p = action("update", "change a bank's settings")
    p.add_argument("name")
    _settings_args(p, creating=False)
    p.set_defaults(run=_update)

    p = action("delete", "delete a bank (its entries are tombstoned)")
    p.add_argument("name")
    p.set_defaults(run=_delete)

    p = action("list", "list banks, one JSON line each")
    p.set_defaults(run=_list)

    p = action("stats", "a bank's settings and entry counts")
    p.add_argument("name")
    p.set_defaults(run=_stats)

    p = action("entries", "list a bank's live entries, paged by id")
    p.add_argument("name")
    p.add_argument("--after", type=int, default=0, help="entries with id > AFTER")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(run=_entries)

    p = action("import", "import a file into a bank (one transaction, idempotent)")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=[f.value for f in Format], default=Format.CSV.value)
    p.add_argument(
        "--signal-type",
        choices=[SignalType.PDQ.value, SignalType.SHA256.value],
        default=SignalType.PDQ.value,
        help="what a bare 64-digit value is (default pdq)",
    )
    p.set_defaults(run=_import)

    p = action("export", "write a bank's live entries to stdout")
    p.add_argument("name")
    p.add_argument("--format", choices=[f.value for f in Format], default=Format.CSV.value)
    p.add_argument(
        "--te-checksums",
        choices=[c.value for c in Checksums],
        default=Checksums.DROP.value,
        help="te: MD5/SHA-256 entries left out (python-threatexchange has no photo checksum"
        " type), or written as video_md5/video_sha256",
    )
    p.add_argument(
        "--allow-lossy",
        action="store_true",
        help="te: exit 0 even when entries or labels had to be left out (still said)",
    )
    p.set_defaults(run=_export)

    p = action("add", "add entries: VALUE is hex, optionally prefixed pdq:/md5:/sha256:")
    p.add_argument("name")
    p.add_argument("values", nargs="+", metavar="VALUE")
    p.add_argument("--label")
    p.add_argument("--external-id")
    p.add_argument("--source")
    p.set_defaults(run=_add)

    p = action("accept-share", "the operator accepts a bank a tenant shared with it")
    p.add_argument("name")
    p.set_defaults(run=_accept_share)

    p = action("leave-share", "the operator leaves a bank a tenant shared with it")
    p.add_argument("name")
    p.set_defaults(run=_leave_share)

    p = action("remove", "remove (tombstone) entries by value")
    p.add_argument("name")
    p.add_argument("values", nargs="+", metavar="VALUE")
    p.set_defaults(run=_remove)


def _settings_args(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("--threshold", type=int, help="PDQ distance threshold (default 31)")
    p.add_argument("--min-quality", type=int, help="ignore PDQ queries of lower quality")
    p.add_argument("--kind", choices=[k.value for k in BankKind], help="block (default) or allow")
    p.add_argument("--owner", help="owner tenant")
    p.add_argument("--visibility", choices=[v.value for v in Visibility])
    p.add_argument("--share", action="append", metavar="TENANT", help="share with TENANT")
    p.add_argument("--signal-types", help="comma-separated: pdq,md5,sha256 (default all)")
    p.add_argument(
        "--distance-policy",
        choices=[d.value for d in DistancePolicy],
        help="the PDQ distance matches tell callers other than the owner (default bucketed)",
    )
    if creating:
        p.add_argument("--disabled", action="store_true", help="create disabled")
    else:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--enable", action="store_true")
        group.add_argument("--disable", action="store_true")


def _warn_over_the_cap(args: argparse.Namespace, io: Streams) -> None:
    if args.threshold is not None and args.threshold > BanksConfig.max_pdq_threshold:
        io.stderr.write(
            f"hashmatch: note: servers match no bank looser than [banks] max_pdq_threshold"
            f" ({BanksConfig.max_pdq_threshold} unless set higher): {args.threshold} is capped\n"
        )


def _settings(args: argparse.Namespace) -> BankSettings:
    types = None
    if args.signal_types:
        try:
            types = frozenset(SignalType(t.strip()) for t in args.signal_types.split(","))
        except ValueError:
            raise BadParameter(
                f"signal types: pdq, md5, sha256; got {args.signal_types!r}"
            ) from None
    enabled = None
    if getattr(args, "disabled", False) or getattr(args, "disable", False):
        enabled = False
    elif getattr(args, "enable", False):
        enabled = True
    return BankSettings(
        owner=args.owner,
        visibility=Visibility(args.visibility) if args.visibility else None,
        shared_with=frozenset(args.share) if args.share is not None else None,
        kind=BankKind(args.kind) if args.kind else None,
        signal_types=types,
        pdq_threshold=args.threshold,
        min_quality=args.min_quality,
        enabled=enabled,
        distance_policy=DistancePolicy(args.distance_policy) if args.distance_policy else None,
    )


def _with_store(args: argparse.Namespace) -> BankStore:
    return data_dir(args).open_banks()


def _create(args: argparse.Namespace, io: Streams) -> ExitCode:
    _warn_over_the_cap(args, io)
    store = _with_store(args)
    try:
        io.json_line(store.create_bank(args.name, _settings(args)).to_json())
    finally:
        store.close()
    return ExitCode.OK


def _update(args: argparse.Namespace, io: Streams) -> ExitCode:
    _warn_over_the_cap(args, io)
    store = _with_store(args)
    try:
        io.json_line(store.update_bank(args.name, _settings(args)).to_json())
    finally:
        store.close()
    return ExitCode.OK


def _delete(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = _with_store(args)
    try:
        store.delete_bank(args.name)
        io.json_line({"deleted": args.name})
    finally:
        store.close()
    return ExitCode.OK


def _list(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = _with_store(args)
    try:
        for b in store.list_banks():
            io.json_line(b.to_json())
    finally:
        store.close()
    return ExitCode.OK


def _stats(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = _with_store(args)
    try:
        bank = store.get_bank(args.name)
        counts = store.count_entries(args.name)
        io.json_line(
            {
                **bank.to_json(),
                "entries": {t.value: n for t, n in counts.items()},
                "total": sum(counts.values()),
                "sequence": store.current_sequence(),
            }
        )
    finally:
        store.close()
    return ExitCode.OK


def _entries(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = _with_store(args)
    try:
        for e in store.list_entries(args.name, after_id=args.after, limit=args.limit):
            io.json_line(e.to_json())
    finally:
        store.close()
    return ExitCode.OK


def _import(args: argparse.Namespace, io: Streams) -> ExitCode:
    if not args.file.is_file():
        raise BadParameter(f"{args.file}: no such file")
    store = _with_store(args)
    try:
        report = import_file(
            store, args.name, args.file, Format(args.format), SignalType(args.signal_type)
        )
    finally:
        store.close()
    for err in report.errors:
        io.stderr.write(json.dumps(err.to_json()) + "\n")
    io.json_line({"bank": args.name, **report.to_json()})
    return ExitCode.FAILURE if report.errors else ExitCode.OK


def _export(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = _with_store(args)
    try:
        report = export_bank(
            store, args.name, Format(args.format), io.stdout, Checksums(args.te_checksums)
        )
    finally:
        store.close()
    if report.lossless:
        return ExitCode.OK
    io.stderr.write(f"hashmatch: {args.format} export left out {report.describe()}\n")
    return ExitCode.OK if args.allow_lossy else ExitCode.FAILURE


def _parse_values(values: list[str]) -> list[tuple[SignalType, bytes]]:
    out = []
    for text in values:
        st, hex_ = guess_signal(text)
        out.append((st, st.parse_hex(hex_)))
    return out


def _add(args: argparse.Namespace, io: Streams) -> ExitCode:
    parsed = _parse_values(args.values)
    entries = [NewEntry(st, v, args.label, args.external_id, args.source) for st, v in parsed]
    store = _with_store(args)
    try:
        bank = store.get_bank(args.name)
        for e in entries:
            if e.signal_type not in bank.signal_types:
                raise BadParameter(
                    f"bank {args.name!r} does not hold {e.signal_type.value} signals"
                )
        report = store.write_entries(args.name, entries)
    finally:
        store.close()
    io.json_line({"bank": args.name, **report.to_json()})
    return ExitCode.OK


def _remove(args: argparse.Namespace, io: Streams) -> ExitCode:
    parsed = _parse_values(args.values)
    store = _with_store(args)
    try:
        removed = store.remove_entries(args.name, parsed)
    finally:
        store.close()
    io.json_line({"bank": args.name, "removed": removed})
    return ExitCode.OK


def _share(args: argparse.Namespace, io: Streams, accepted: bool) -> ExitCode:
    store = _with_store(args)
    try:
        io.json_line(store.set_share_accepted(args.name, "", accepted).to_json())
    finally:
        store.close()
    return ExitCode.OK


def _accept_share(args: argparse.Namespace, io: Streams) -> ExitCode:
    return _share(args, io, True)


def _leave_share(args: argparse.Namespace, io: Streams) -> ExitCode:
    return _share(args, io, False)
