"""An exchange's secrets, from the environment or the secrets file the config names; the
database holds only their names."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from hashmatch.errors import ConfigError
from hashmatch.exchanges.model import Credentials, Exchange


def read_secrets_file(path: str) -> dict[str, str]:
    if not path:
        return {}
    p = Path(path)
    try:
        mode = p.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{p}: the exchange secrets file must be its owner's alone (0600)")
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        reason = type(exc).__name__  # never the text: it may quote the file
        raise ConfigError(f"{p}: cannot read the exchange secrets file ({reason})") from None
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def resolve(
    exchange: Exchange, secrets: Mapping[str, str], environ: Mapping[str, str] = os.environ
) -> Credentials:
    values, missing = [], []
    for name in exchange.settings.credentials_env:
        value = environ.get(name) or secrets.get(name)
        if value:
            values.append(value)
        else:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"exchange {exchange.name!r}: set {', '.join(missing)} in the environment or the"
            " secrets file ([exchanges] secrets_file)"
        )
    return Credentials(tuple(values))
