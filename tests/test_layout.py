"""The package's shape holds: the core does not reach into its faces, and the CLI loads
only what the command asked for needs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hashmatch"
FACES = ("hashmatch.server", "hashmatch.rest", "hashmatch.commands", "hashmatch.cli")
HEAVY = ("numba", "pyarrow", "av", "grpc", "uvicorn")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize(
    "inner", ["core", "hashing", "matching", "index", "kernels", "banks", "exchanges"]
)
def test_inner_packages_never_import_a_face(inner: str) -> None:
    offenders = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in (PACKAGE / inner).rglob("*.py")
        for m in _imports(p)
        if m.startswith(FACES)
    }
    assert offenders == set()


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {m.split(".")[0] for m in out.stdout.split()}


@pytest.mark.parametrize(
    "argv",
    [
        ["bank", "list"],
        ["admin", "tenant", "list"],
        ["audit", "verify"],
        ["quarantine", "list"],
        ["report", "usage", "--from", "2026-01-01", "--to", "2026-02-01"],
        ["video-bank", "list", "b"],
        ["exchange", "list"],
        ["sandbox", "--help"],
    ],
)
def test_light_commands_load_no_kernels_decoders_or_grpc(argv: list[str], tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)] if argv[-1] != "--help" else []
    code = (
        "import contextlib, io\n"
        "from hashmatch.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv + data!r})\n"
    )
    loaded = _modules_after(code)
    assert loaded & set(HEAVY) == set()


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    hm = [sys.executable, "-m", "hashmatch"]
    subprocess.run([*hm, "bank", "create", "b", *data], check=True, capture_output=True)
    values = [f"{k:064x}" for k in range(1, 3001)]
    subprocess.run([*hm, "bank", "add", "b", *values, *data], check=True, capture_output=True)
    proc = subprocess.Popen(
        [*hm, "bank", "entries", "b", "--limit", "3000", *data],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # what `| head -1` reads, then it goes away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) == 141 and b'"id": 1' in first
    assert "Traceback" not in err and "BrokenPipe" not in err
