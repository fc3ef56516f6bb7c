"""The deployment files stay true without containers: every flag, variable, service name
and port in Dockerfile, deploy/compose.yaml, deploy/envoy.yaml and docs/DEPLOY.md is one
the CLI and the config accept, and they agree with each other."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re

import yaml

from hashmatch.cli import build_parser
from hashmatch.commands import serve as serve_command
from hashmatch.config import _SECTIONS, DATABASE_URL_ENV, ENV_PREFIX, load_config
from tests.test_dockerfile import ROOT, _instructions


def _entrypoint() -> list[str]:
    [entry] = [rest for word, rest in _instructions("Dockerfile") if word == "ENTRYPOINT"]
    argv: list[str] = json.loads(entry)
    return argv


def _parses(argv: list[str]) -> dict[str, object]:
    """argv (from `hashmatch` on) through the real parser; its options as parsed."""
    assert argv[0] == "hashmatch"
    return vars(build_parser(argv[1]).parse_args(argv[1:]))


def _known_variable(var: str) -> bool:
    """A HASHMATCH_ variable the config reads: HASHMATCH_<SECTION>_<KEY>, or one of its
    named ones."""
    if var in (DATABASE_URL_ENV, f"{ENV_PREFIX}DATA_DIR"):
        return True
    return any(
        var == f"{ENV_PREFIX}{section}_{f.name}".upper()
        for section, cls in _SECTIONS.items()
        for f in dataclasses.fields(cls)
    )


def _compose_file() -> dict[str, dict]:  # type: ignore[type-arg]
    loaded: dict[str, dict] = yaml.safe_load(  # type: ignore[type-arg]
        (ROOT / "deploy" / "compose.yaml").read_text()
    )
    return loaded


def _compose() -> dict[str, dict]:  # type: ignore[type-arg]
    return _compose_file()["services"]


def test_cpu_dockerfile_installs_the_postgres_extra_and_serves_on_all_interfaces() -> None:
    steps = _instructions("Dockerfile")
    [base] = [rest for word, rest in steps if word == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim-\w+", base), base
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert '".[postgres]"' in runs and "libturbojpeg0" in runs
    args = _parses(_entrypoint())
    assert args["listen"] == "0.0.0.0:50051" and args["backend"] == "cpu"
    assert str(args["data_dir"]) == "/data" and ("VOLUME", "/data") in steps
    assert "50051" in dict(steps)["EXPOSE"]


def test_compose_replicas_use_real_flags_and_settings() -> None:
    services = _compose()
    replicas = {n: s for n, s in services.items() if s.get("build", {}).get("dockerfile")}
    assert set(replicas) == {"replica-a", "replica-b"}
    volumes = set()
    for name, svc in replicas.items():
        args = _parses(_entrypoint() + svc.get("command", []))
        assert args["workers"] == 2, name
        env = {k: str(v) for k, v in svc["environment"].items()}
        hashmatch_env = {k: v for k, v in env.items() if k.startswith("HASHMATCH_")}
        assert all(_known_variable(v) for v in hashmatch_env), hashmatch_env
        config = load_config(environ=hashmatch_env)
        assert config.storage.database_url.startswith("postgresql://hashmatch@postgres:")
        assert "@postgres:5432/" in config.storage.database_url and "PGPASSWORD" in env
        assert config.server.grace_seconds == 20.0
        # One audit chain over the database: every replica signs it with the same secret.
        assert config.storage.audit_key_file == "/run/secrets/audit_key"
        assert svc["secrets"] == ["audit_key"]
        grace_s = float(svc["stop_grace_period"].rstrip("s"))
        assert grace_s > config.server.grace_seconds  # drain and snapshot before a SIGKILL
        volumes.add(svc["volumes"][0].split(":")[0])
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert len(volumes) == 2  # a data dir (snapshot) each
    assert _compose_file()["secrets"]["audit_key"]["file"] == "./audit.key"
    assert services["postgres"]["image"].startswith("postgres:")


def test_envoy_balances_over_the_compose_replicas_with_grpc_health() -> None:
    envoy = yaml.safe_load((ROOT / "deploy" / "envoy.yaml").read_text())
    [cluster] = envoy["static_resources"]["clusters"]
    endpoints = {
        (e["endpoint"]["address"]["socket_address"]["address"],
         e["endpoint"]["address"]["socket_address"]["port_value"])
        for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]
    }  # fmt: skip
    port = int(str(_parses(_entrypoint())["listen"]).rsplit(":", 1)[1])
    assert endpoints == {("replica-a", port), ("replica-b", port)}
    assert "grpc_health_check" in cluster["health_checks"][0]
    http = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in http["explicit_http_config"]
    [listener] = envoy["static_resources"]["listeners"]
    published = {p.rsplit(":", 2)[-1] for p in _compose()["envoy"]["ports"]}
    assert str(listener["address"]["socket_address"]["port_value"]) in published


def test_deploy_doc_names_only_real_flags_and_variables() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    serve = argparse.ArgumentParser()
    serve_command.register(serve)
    known = {o for a in serve._actions for o in a.option_strings}
    # Every --flag the page names is serve's, but docker compose's and kubectl's own.
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text)) - {"--build", "--from-file"}
    assert flags and flags <= known, flags - known
    names = set(re.findall(r"\b(HASHMATCH_[A-Z_]+)\b", text)) - {"HASHMATCH_DB_PASSWORD"}
    assert names and all(_known_variable(v) for v in names), names
