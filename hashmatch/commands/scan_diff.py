"""`hashmatch scan-diff OLD NEW`: the rows matching in NEW that did not match in OLD."""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import ExitCode, Streams


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.scan.output import read_rows

    def matched(path: Path) -> dict[str, set[tuple[str, int]]]:
        out: dict[str, set[tuple[str, int]]] = {}
        for r in read_rows(path).select(["path", "matches"]).to_pylist():
            out[r["path"]] = {
                (m["bank"], m["entry_id"]) for m in r["matches"] or [] if not m["suppressed"]
            }
        return out

    old, new = matched(args.old), matched(args.new)
    for path, hits in new.items():
        fresh = hits - old.get(path, set())
        if fresh:
            io.json_line(
                {
                    "path": path,
                    "new_matches": [{"bank": b, "entry_id": e} for b, e in sorted(fresh)],
                }
            )
    return ExitCode.OK
