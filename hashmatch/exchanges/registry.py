"""From a configured exchange to its client: the type's module, its environments and the
credentials it takes."""

from __future__ import annotations

import importlib
from types import ModuleType
from urllib.parse import urlsplit

from hashmatch.config import ExchangesConfig
from hashmatch.errors import BadParameter
from hashmatch.exchanges.client import ExchangeClient
from hashmatch.exchanges.http import HttpSettings
from hashmatch.exchanges.model import Credentials, Exchange, ExchangeSettings, ExchangeType

_MODULES = {
    ExchangeType.NCMEC: ("hashmatch.exchanges.ncmec", "NcmecClient"),
    ExchangeType.STOPNCII: ("hashmatch.exchanges.stopncii", "StopnciiClient"),
    ExchangeType.THREATEXCHANGE: ("hashmatch.exchanges.threatexchange", "ThreatExchangeClient"),
}


def module(type: ExchangeType) -> ModuleType:
    return importlib.import_module(_MODULES[type][0])


def environments(type: ExchangeType) -> dict[str, str]:
    found: dict[str, str] = module(type).ENVIRONMENTS
    return found


def credential_names(type: ExchangeType) -> tuple[str, ...]:
    """What the credential values are, in order (e.g. user, password)."""
    names: tuple[str, ...] = module(type).CREDENTIALS
    return names


def check(type: ExchangeType, settings: ExchangeSettings) -> None:
    """A new exchange's settings make sense for its type (before anything is stored)."""
    envs = environments(type)
    if settings.environment and settings.environment not in envs:
        raise BadParameter(
            f"{type.value} environments: {', '.join(envs)} (got {settings.environment!r})"
        )
    if not settings.environment and not settings.url:
        raise BadParameter(f"--environment ({', '.join(envs)}) or --url is needed")
    if settings.url:
        parts = urlsplit(settings.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise BadParameter("--url: an http(s):// base URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            # It is stored and shown: credentials go in --credentials-env, never here.
            raise BadParameter("--url: no user, password, query or fragment in it")
    wanted = credential_names(type)
    # Some credentials serve feedback only (StopNCII's SubmitFeedback key).
    least = (
        len(wanted)
        if settings.feedback_upstream
        else getattr(module(type), "REQUIRED_CREDENTIALS", len(wanted))
    )
    if not least <= len(settings.credentials_env) <= len(wanted):
        raise BadParameter(
            f"--credentials-env: {least if least == len(wanted) else f'{least} or {len(wanted)}'}"
            f" variable names for {type.value} ({', '.join(wanted)}), comma-separated"
        )
    if type is ExchangeType.THREATEXCHANGE and not settings.privacy_groups:
        raise BadParameter("a threatexchange exchange needs --privacy-group (one or more)")
    bad = [g for g in settings.privacy_groups if not (g.isdigit() and len(g) <= 40)]
    if bad:
        raise BadParameter(f"--privacy-group: numeric ids (got {bad[0]!r})")


def http_settings(config: ExchangesConfig) -> HttpSettings:
    return HttpSettings(
        timeout_s=config.timeout_s,
        max_attempts=config.attempts,
        backoff_s=config.backoff_s,
        backoff_max_s=config.backoff_max_s,
        min_interval_s=config.min_interval_s,
        max_run_s=config.max_run_s,
    )


def open_client(
    exchange: Exchange,
    credentials: Credentials,
    settings: HttpSettings,
    config: ExchangesConfig | None = None,
) -> ExchangeClient:
    s = exchange.settings
    base_url = s.url or environments(exchange.type)[s.environment]
    cls = getattr(module(exchange.type), _MODULES[exchange.type][1])
    extra: dict[str, object] = {}
    if exchange.type is ExchangeType.THREATEXCHANGE:
        extra["privacy_groups"] = s.privacy_groups
    if exchange.type is ExchangeType.NCMEC and config is not None:
        extra["negative_reason"] = config.ncmec_negative_reason
    client: ExchangeClient = cls(exchange.name, base_url, credentials, settings, **extra)
    return client
