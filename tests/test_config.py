"""The typed configuration: TOML file, flag overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hashmatch.config import BackendChoice, HashMode, PoolKind, load_config
from hashmatch.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "hashmatch.example.toml"


def test_defaults_are_the_embedded_service() -> None:
    config = load_config()
    assert config.server.listen == "127.0.0.1:50051"
    assert config.data_dir == Path("hashmatch-data")
    assert config.engine.mode is HashMode.EXACT


def test_example_config_loads_and_flags_override(tmp_path: Path) -> None:
    config = load_config(
        EXAMPLE, {"server": {"listen": "0.0.0.0:6000"}, "": {"data_dir": str(tmp_path)}}
    )
    assert config.server.listen == "0.0.0.0:6000"
    assert config.data_dir == tmp_path
    assert config.batch.pool is PoolKind.THREAD
    assert config.engine.backend is BackendChoice.AUTO


@pytest.mark.parametrize(
    "text",
    [
        "[server]\nlisten_on = 'x'\n",
        "[engine]\nmode = 'turbo'\n",
        "bogus = 1\n",
        "[server\n",
        "[auth]\nrate_per_second = 0\n",
        "[auth]\nrequire = true\n",
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)
