"""What every subcommand shares: exit codes, the streams it talks to, common options."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from hashmatch.config import DecoderChoice
from hashmatch.storage.datadir import DEFAULT_DATA_DIR, DataDir


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    DEPENDENCY = 3
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE: a reader that stopped reading (`| head`)


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


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"the data folder: banks, tenants, audit, index snapshot (default {DEFAULT_DATA_DIR})",
    )


def data_dir(args: argparse.Namespace) -> DataDir:
    return DataDir(args.data_dir)
