"""From a configured exchange to its client: the type's module, its environments and the
credentials it takes."""

from __future__ import annotations

import importlib
from types import ModuleType

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
    if settings.url and not settings.url.startswith(("https://", "http://")):
        raise BadParameter("--url: an http(s):// base URL")
    wanted = credential_names(type)
    if len(settings.credentials_env) != len(wanted):
        raise BadParameter(
            f"--credentials-env: {len(wanted)} variable names for {type.value}"
            f" ({', '.join(wanted)}), comma-separated"
        )
    if type is ExchangeType.THREATEXCHANGE and not settings.privacy_groups:
        raise BadParameter("a threatexchange exchange needs --privacy-group (one or more)")


def http_settings(config: ExchangesConfig) -> HttpSettings:
    return HttpSettings(
        timeout_s=config.timeout_s,
        max_attempts=config.attempts,
        backoff_s=config.backoff_s,
        backoff_max_s=config.backoff_max_s,
        min_interval_s=config.min_interval_s,
    )


def open_client(
    exchange: Exchange, credentials: Credentials, settings: HttpSettings
) -> ExchangeClient:
    s = exchange.settings
    base_url = s.url or environments(exchange.type)[s.environment]
    cls = getattr(module(exchange.type), _MODULES[exchange.type][1])
    extra: dict[str, object] = {}
    if exchange.type is ExchangeType.THREATEXCHANGE:
        extra["privacy_groups"] = s.privacy_groups
    client: ExchangeClient = cls(exchange.name, base_url, credentials, settings, **extra)
    return client
