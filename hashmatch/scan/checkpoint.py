"""The scan's checkpoint: which shards are complete, and for which run parameters.

A shard's Parquet file is written atomically first, then the manifest (also atomically)
names it; a kill between the two leaves a file the manifest does not name, which the
resumed run simply writes again. Shards are cut from a deterministic listing, and the
manifest records each shard's first and last path so a changed source is detected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashmatch.errors import BadParameter

MANIFEST = "_manifest.json"


@dataclass
class Manifest:
    params: dict[str, Any]
    shards: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load_or_new(cls, out: Path, params: dict[str, Any]) -> Manifest:
        path = out / MANIFEST
        if not path.exists():
            return cls(params)
        raw = json.loads(path.read_text())
        if raw.get("params") != params:
            raise BadParameter(
                f"{out} holds a scan with other parameters; use another --out or --restart"
            )
        return cls(params, {int(k): v for k, v in raw.get("shards", {}).items()})

    def check_shard(self, index: int, first: str, last: str, count: int) -> bool:
        """True if the shard is complete; raises if the source changed under it."""
        done = self.shards.get(index)
        if done is None:
            return False
        if (done["first"], done["last"], done["count"]) != (first, last, count):
            raise BadParameter(
                f"the source changed since shard {index} was written; rescan with --restart"
            )
        return True

    def complete(self, out: Path, index: int, info: dict[str, Any]) -> None:
        self.shards[index] = info
        tmp = out / f".{MANIFEST}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"params": self.params, "shards": self.shards}, sort_keys=True))
        os.replace(tmp, out / MANIFEST)
