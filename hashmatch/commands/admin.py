"""`hashmatch admin ...`: tenants and API keys, on the server's data dir (the local
operator; remote administration is the gRPC AdminService with an operator key).

    hashmatch admin bootstrap                        # the first operator key
    hashmatch admin tenant apply|approve|reject|suspend|reinstate|list|limits ...
    hashmatch admin key create|list|rotate|revoke ...

Keys are printed once (`secret`); only their salted scrypt hashes are stored.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.config import AuthConfig
from hashmatch.errors import AlreadyExists
from hashmatch.tenancy.model import TenantAction, TenantState, parse_roles
from hashmatch.tenancy.service import LOCAL_OPERATOR, Tenancy

Action = Callable[[Tenancy, argparse.Namespace, Streams], None]


def register(admin: argparse.ArgumentParser) -> None:
    groups = admin.add_subparsers(dest="group", required=True)

    def command(parent: Any, name: str, help_: str, fn: Action) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_)
        add_data_dir(p)
        p.set_defaults(run=lambda args, io: _run(fn, args, io))
        return p

    p = groups.add_parser("bootstrap", help="create the operator tenant and its first key")
    add_data_dir(p)
    p.add_argument("--force", action="store_true", help="another key even if one was written")
    p.set_defaults(run=_bootstrap)

    tenant = groups.add_parser("tenant", help="tenants: apply, decide, list").add_subparsers(
        dest="action", required=True
    )
    p = command(tenant, "apply", "record an organisation's application", _apply)
    p.add_argument("tenant_id")
    p.add_argument("--organisation", required=True)
    p.add_argument("--contact", required=True, help="who to reach (e-mail)")
    p.add_argument("--intended-use", required=True)
    for action in TenantAction:
        p = command(tenant, action.value, f"{action.value} a tenant", _decider(action))
        p.add_argument("tenant_id")
        p.add_argument("--reason", default="")
    p = command(tenant, "list", "tenants, one JSON line each", _list_tenants)
    p.add_argument("--state", choices=[s.value for s in TenantState])
    p = command(tenant, "limits", "a tenant's own limits (0: the server's default)", _limits)
    p.add_argument("tenant_id")
    p.add_argument("--rate", type=float, help="requests per second")
    p.add_argument("--monthly-items", type=int, help="images or hashes per month")

    key = groups.add_parser("key", help="API keys: create, list, rotate, revoke").add_subparsers(
        dest="action", required=True
    )
    p = command(key, "create", "a key for a tenant (printed once)", _create_key)
    p.add_argument("tenant_id")
    p.add_argument(
        "--role",
        action="append",
        required=True,
        help="match, bank-admin, report, tenant-admin, operator (repeatable)",
    )
    p.add_argument("--name", default="")
    p = command(key, "list", "keys (never their secrets)", _list_keys)
    p.add_argument("tenant_id", nargs="?")
    p = command(key, "rotate", "a new key; the old one works for --overlap more", _rotate)
    p.add_argument("key_id")
    p.add_argument("--overlap", type=float, help="seconds (default: [auth] rotation_overlap_s)")
    p = command(key, "revoke", "stop a key now", _revoke)
    p.add_argument("key_id")


def _run(fn: Action, args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_tenants()
    try:
        fn(Tenancy(store, AuthConfig()), args, io)
    finally:
        store.close()
    return ExitCode.OK


def _bootstrap(args: argparse.Namespace, io: Streams) -> ExitCode:
    path: Path = data_dir(args).operator_key
    if path.exists() and not args.force:
        raise AlreadyExists(f"{path} exists (the operator key); --force makes another")
    store = data_dir(args).open_tenants()
    try:
        key, whole = Tenancy(store, AuthConfig()).bootstrap()
    finally:
        store.close()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # none yet on PostgreSQL
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(whole + "\n")
    io.json_line({"key": key.to_json(), "key_file": str(path)})
    scope = "every server on this database" if args.database_url else "this data dir"
    io.stderr.write(f"hashmatch: operator key written to {path}; auth is now on for {scope}\n")
    return ExitCode.OK


def _apply(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    tenant = t.apply(args.tenant_id, args.organisation, args.contact, args.intended_use)
    io.json_line(tenant.to_json())


def _decider(action: TenantAction) -> Action:
    def decide(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
        io.json_line(t.decide(LOCAL_OPERATOR, args.tenant_id, action, args.reason).to_json())

    return decide


def _list_tenants(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    state = TenantState(args.state) if args.state else None
    for tenant in t.list_tenants(LOCAL_OPERATOR, state):
        io.json_line(tenant.to_json())


def _limits(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    io.json_line(
        t.set_limits(LOCAL_OPERATOR, args.tenant_id, args.rate, args.monthly_items).to_json()
    )


def _create_key(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    key, whole = t.create_key(LOCAL_OPERATOR, args.tenant_id, parse_roles(args.role), args.name)
    io.json_line({"key": key.to_json(), "secret": whole})


def _list_keys(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    keys = t.list_keys(LOCAL_OPERATOR, args.tenant_id) if args.tenant_id else t.store.list_keys()
    for k in keys:
        io.json_line(k.to_json())


def _rotate(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    key, whole = t.rotate_key(LOCAL_OPERATOR, args.key_id, args.overlap)
    io.json_line({"key": key.to_json(), "secret": whole, "replaces": args.key_id})


def _revoke(t: Tenancy, args: argparse.Namespace, io: Streams) -> None:
    io.json_line(t.revoke_key(LOCAL_OPERATOR, args.key_id).to_json())
