"""What every subcommand shares: exit codes and the streams it talks to."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    DEPENDENCY = 3
    INTERRUPTED = 130


@dataclass
class Streams:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def json_line(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj) + "\n")
