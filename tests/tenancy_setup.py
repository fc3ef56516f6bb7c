"""Tenants and keys for the end-to-end tenancy tests, made with the `hashmatch admin` CLI
on a data dir before the server starts (so the server starts with auth on)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from hashmatch.cli import main
from hashmatch.commands.common import Streams


def admin(data_dir: Path, *argv: str) -> dict[str, object]:
    out = io.StringIO()
    err = io.StringIO()
    code = main(["admin", *argv, "--data-dir", str(data_dir)], Streams(stdout=out, stderr=err))
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    return json.loads(lines[-1]) if lines else {}


def tenant(data_dir: Path, tenant_id: str, *decisions: str) -> None:
    admin(
        data_dir, "tenant", "apply", tenant_id, "--organisation", f"{tenant_id} Ltd",
        "--contact", f"trust@{tenant_id}.example", "--intended-use", "upload scanning",
    )  # fmt: skip
    for d in decisions:
        admin(data_dir, "tenant", d, tenant_id, "--reason", "checked")


def key(data_dir: Path, tenant_id: str, *roles: str) -> str:
    args = [a for r in roles for a in ("--role", r)]
    made = admin(data_dir, "key", "create", tenant_id, *args)
    secret = made["secret"]
    assert isinstance(secret, str)
    return secret


@dataclass
class Keys:
    operator: str
    by_name: dict[str, str | None] = field(default_factory=dict)
    spare: dict[str, str] = field(default_factory=dict)  # key ids to rotate / revoke


def populate(data_dir: Path) -> Keys:
    boot = admin(data_dir, "bootstrap")
    operator = (data_dir / "operator.key").read_text().strip()
    assert boot["key_file"] == str(data_dir / "operator.key")
    tenant(data_dir, "acme", "approve")
    tenant(data_dir, "globex", "approve")
    tenant(data_dir, "pending")
    tenant(data_dir, "paused", "approve", "suspend")
    tenant(data_dir, "target")  # an operator approves it through the API
    k = Keys(operator)
    k.by_name = {
        "no key": None,
        "bad key": "hmk_000000000000_" + "A" * 43,
        "not a key": "let me in",
        "match": key(data_dir, "acme", "match"),
        "bank-admin": key(data_dir, "acme", "bank-admin"),
        "report": key(data_dir, "acme", "report"),
        "tenant-admin": key(data_dir, "acme", "tenant-admin"),
        "operator": operator,
        "other tenant": key(data_dir, "globex", "match", "bank-admin", "tenant-admin"),
        "pending tenant": key(data_dir, "pending", "match", "bank-admin", "tenant-admin"),
        "suspended tenant": key(data_dir, "paused", "match", "bank-admin", "tenant-admin"),
    }
    revoked = key(data_dir, "acme", "match", "bank-admin", "tenant-admin")
    admin(data_dir, "key", "revoke", revoked.split("_")[1])
    k.by_name["revoked key"] = revoked
    for name in ("rotate", "revoke"):
        k.spare[name] = key(data_dir, "acme", "match").split("_")[1]
    return k
