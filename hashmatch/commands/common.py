"""What every subcommand shares: exit codes, the streams it talks to, common options."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from hashmatch.config import DATABASE_URL_ENV, DecoderChoice
from hashmatch.errors import BadParameter
from hashmatch.storage.datadir import DEFAULT_DATA_DIR, DataDir
from hashmatch.storage.postgres import is_postgres_url


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
    add_database_url(parser, os.environ.get(DATABASE_URL_ENV, ""))


def add_database_url(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--database-url",
        default=default,
        metavar="URL",
        help="postgresql://user@host/db: the banks there, shared by every replica (default"
        f" ${DATABASE_URL_ENV}, else SQLite in the data dir); the password from PGPASSWORD"
        " or ~/.pgpass",
    )


AUDIT_KEY_ENV = "HASHMATCH_STORAGE_AUDIT_KEY_FILE"


def add_audit_key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit-key-file",
        type=Path,
        default=os.environ.get(AUDIT_KEY_ENV) or None,
        metavar="FILE",
        help=f"the audit chain's key (default ${AUDIT_KEY_ENV}, else audit.key in the data dir)",
    )


def data_dir(args: argparse.Namespace) -> DataDir:
    url = args.database_url or ""
    if url and not is_postgres_url(url):
        raise BadParameter("--database-url: a postgresql:// URL")
    return DataDir(args.data_dir, url, getattr(args, "audit_key_file", None))


def add_api_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key-file",
        type=Path,
        metavar="FILE",
        help="read the API key from FILE (default: $HASHMATCH_API_KEY); needed once the"
        " server has keys",
    )
    parser.add_argument(
        "--api-key", help="the API key itself (seen by every user in the process list: prefer"
        " $HASHMATCH_API_KEY or --api-key-file)",
    )  # fmt: skip


def api_key_of(args: argparse.Namespace, io: Streams) -> str | None:
    """The caller's key: --api-key-file, else --api-key (with a warning), else the
    environment's HASHMATCH_API_KEY."""
    if args.api_key_file is not None:
        try:
            return args.api_key_file.read_text().strip() or None
        except OSError as exc:
            raise BadParameter(f"--api-key-file: {exc.strerror}") from None
    if args.api_key:
        io.stderr.write(
            "hashmatch: warning: --api-key puts the key in the process list; use"
            " $HASHMATCH_API_KEY or --api-key-file\n"
        )
        return str(args.api_key)
    return os.environ.get("HASHMATCH_API_KEY") or None
