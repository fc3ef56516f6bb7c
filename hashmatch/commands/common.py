"""What every subcommand shares: exit codes, the streams it talks to, common options."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO

from hashmatch.config import DecoderChoice


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


# The image decoder option of `hash` and `scan` (exact mode).
DECODER_ARGUMENT: dict[str, Any] = {
    "choices": [c.value for c in DecoderChoice],
    "default": DecoderChoice.AUTO.value,
    "help": "auto: DALI, else nvImageCodec, beside the GPU backend; else cpu (simplejpeg/Pillow)",
}
