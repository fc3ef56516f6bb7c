"""Dockerfile.cuda stays correct without Docker: its base, what it installs, how it starts."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _instructions(name: str = "Dockerfile.cuda") -> list[tuple[str, str]]:
    """A Dockerfile's instructions: (WORD, the rest), continuation lines joined."""
    text = (ROOT / name).read_text()
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_cuda_base_install_and_entry() -> None:
    steps = _instructions()
    [base] = [rest for word, rest in steps if word == "FROM"]
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-runtime-ubuntu\d+\.\d+", base), base
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert '".[gpu]"' in runs  # the project with its gpu extra, nothing pinned beside it
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[ ]", r, maxsplit=1)[0] for r in extras["gpu"]}
    for name in (
        "cupy-cuda13x",
        "numba-cuda",
        "nvidia-dali-cuda130",
        "nvidia-nvimgcodec-cu13",
        "nvidia-nvjpeg",  # nvImageCodec's GPU JPEG decode
    ):
        assert name in names, name
    assert any(n.startswith("faiss-gpu") for n in names)
    # Every package the image installs by name is one the extras declare.
    for pkg in re.findall(r"pip install[^&]*", runs):
        for arg in shlex.split(pkg)[2:]:
            if not arg.startswith("-") and arg != ".[gpu]":
                assert arg.split("=")[0] in names, arg
    [entry] = [rest for word, rest in steps if word == "ENTRYPOINT"]
    argv = __import__("json").loads(entry)
    assert argv[:4] == ["hashmatch", "serve", "--backend", "gpu"]
    assert "--data-dir" in argv and argv[argv.index("--data-dir") + 1] == "/data"
    [health] = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert "HealthStub" in health and "50051" in health
    assert ("VOLUME", "/data") in steps
