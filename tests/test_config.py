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


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[batch]\nmax_batch = "64"\n', "[batch] max_batch"),
        ("[server]\nlisten = 50051\n", "[server] listen"),
        ('[sandbox]\nenabled = "no"\n', "[sandbox] enabled"),
        ('[engine]\ndihedral = "no"\n', "[engine] dihedral"),
        ("[auth]\nrate_per_second = true\n", "[auth] rate_per_second"),
        ("[webhooks]\nurls = { acme = 3 }\n", "[webhooks] urls"),
        ("data_dir = 7\n", "data_dir"),
        ("server = 3\n", "[server]"),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_key(
    tmp_path: Path, text: str, named: str
) -> None:
    """A string is no number, a number no address, "no" no boolean: each is a ConfigError
    naming the setting, never a TypeError deep inside or a truthy "no"."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert named in exc.value.message


def test_environment_overrides_file_and_flags_override_both(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[batch]\nmax_batch = 16\n[sandbox]\nenabled = true\n")
    env = {
        "HASHMATCH_BATCH_MAX_BATCH": "64",
        "HASHMATCH_SANDBOX_ENABLED": "false",
        "HASHMATCH_SERVER_LISTEN": "0.0.0.0:7000",
        "HASHMATCH_ENGINE_BACKEND": "cpu",
        "HASHMATCH_DATA_DIR": str(tmp_path / "env-data"),
        "HASHMATCH_API_KEY": "not a setting: ignored",
    }
    config = load_config(path, None, env)
    assert config.batch.max_batch == 64 and config.sandbox.enabled is False
    assert config.server.listen == "0.0.0.0:7000" and config.engine.backend is BackendChoice.CPU
    assert config.data_dir == tmp_path / "env-data"
    flagged = load_config(path, {"server": {"listen": "127.0.0.1:1"}, "batch": {}}, env)
    assert flagged.server.listen == "127.0.0.1:1" and flagged.batch.max_batch == 64
    with pytest.raises(ConfigError, match="HASHMATCH_SANDBOX_ENABLED"):
        load_config(None, None, {"HASHMATCH_SANDBOX_ENABLED": "maybe"})
    with pytest.raises(ConfigError, match="HASHMATCH_BATCH_MAX_BATCH"):
        load_config(None, None, {"HASHMATCH_BATCH_MAX_BATCH": "lots"})


def test_database_url_from_file_environment_and_flag(tmp_path: Path) -> None:
    url = "postgresql://hashmatch@db/hashmatch"
    assert load_config().storage.database_url == ""
    assert load_config(environ={"HASHMATCH_DATABASE_URL": url}).storage.database_url == url
    toml = tmp_path / "c.toml"
    toml.write_text('[storage]\ndatabase_url = "postgresql://file@db/x"\n')
    assert load_config(toml).storage.database_url == "postgresql://file@db/x"
    flagged = load_config(toml, {"storage": {"database_url": url}}, {})
    assert flagged.storage.database_url == url
    with pytest.raises(ConfigError, match="database_url"):
        load_config(environ={"HASHMATCH_DATABASE_URL": "mysql://x"})


def test_the_example_config_names_every_setting_at_its_default() -> None:
    """hashmatch.example.toml says it holds every setting with its default: so it does."""
    import dataclasses
    import tomllib

    from hashmatch.config import _SECTIONS as SECTIONS
    from hashmatch.config import Config

    example = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    missing, different = [], []
    for section in SECTIONS:
        given = example.get(section, {})
        for f in dataclasses.fields(getattr(defaults, section)):
            if f.name not in given:
                missing.append(f"[{section}] {f.name}")
                continue
            default = getattr(getattr(defaults, section), f.name)
            value = default.value if hasattr(default, "value") else default
            if isinstance(value, tuple):
                value = list(value)
            if given[f.name] != value and not (
                isinstance(value, Path) and str(value) == given[f.name]
            ):
                different.append(f"[{section}] {f.name}: {given[f.name]!r} != {value!r}")
    assert not missing and not different, (missing, different)
