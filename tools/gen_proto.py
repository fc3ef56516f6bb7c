"""Generate hashmatch/proto/ from proto/hashmatch/v1/*.proto (the generated code is committed;
tests/test_proto_fresh.py fails when it is stale).

    python tools/gen_proto.py [OUT_DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"


def generate(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = sorted(p for p in out.rglob("*.py*") if p.is_file())
    for path in written:
        # protoc writes absolute imports (`from hashmatch.v1 import x_pb2`) that would
        # resolve against our own `hashmatch` package: make them relative.
        text = re.sub(
            r"^from hashmatch\.v1 import (\w+)", r"from . import \1", path.read_text(), flags=re.M
        )
        path.write_text(text)
    for pkg in {p.parent for p in written} | {out / "hashmatch"}:
        (pkg / "__init__.py").touch()
    return written


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "hashmatch" / "proto")
