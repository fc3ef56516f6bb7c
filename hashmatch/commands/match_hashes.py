"""`hashmatch match-hashes`: hashes on stdin, one query a line, to JSON lines in order.

A line is a PDQ hash (64 hex digits), an MD5 (32), or `pdq:`/`md5:`/`sha256:` and hex; a
PDQ line may carry up to 8 hashes separated by commas or spaces: the query's dihedral
variants, the original first. Output per line: {"hash", "matches": [...]} or
{"hash", "error": {"code", "message"}}.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from itertools import islice
from typing import Any, TextIO

from hashmatch.banks.model import SignalType, guess_signal
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.errors import BadParameter, HashmatchError, ItemError
from hashmatch.matching.bank_matcher import HashQuery, Matcher
from hashmatch.storage.datadir import add_data_dir, matcher_config, open_store

BATCH = 1024
_SPLIT = re.compile(r"[,\s]+")


def register(sub: Any) -> None:
    p = sub.add_parser("match-hashes", help="match hashes read from stdin against the banks")
    add_data_dir(p)
    p.add_argument("--bank", action="append", default=[], metavar="NAME", help="only this bank")
    p.add_argument("--threshold", type=int, help="PDQ threshold for every bank, this request")
    p.add_argument("--tenant", help="match as this tenant (default: the operator, all banks)")
    p.set_defaults(run=run)


def parse_line(line: str) -> HashQuery:
    tokens = [t for t in _SPLIT.split(line.strip()) if t]
    parsed = [guess_signal(t) for t in tokens]
    st = parsed[0][0]
    if len(parsed) > 1 and (st is not SignalType.PDQ or any(p[0] is not st for p in parsed)):
        raise BadParameter("only PDQ queries carry several (dihedral) hashes")
    return HashQuery(st, tuple(st.parse_hex(h) for _, h in parsed))


def _lines(stdin: TextIO) -> Iterator[str]:
    for line in stdin:
        if line.strip():
            yield line.strip()


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = open_store(args.data_dir)
    matcher = Matcher.open(store, matcher_config(args.data_dir))
    try:
        lines = _lines(io.stdin)
        while batch := list(islice(lines, BATCH)):
            queries: list[HashQuery] = []
            slots: list[int | ItemError] = []
            for line in batch:
                try:
                    queries.append(parse_line(line))
                    slots.append(len(queries) - 1)
                except HashmatchError as exc:
                    slots.append(ItemError.from_exception(exc))
            results = matcher.match(queries, args.tenant, args.bank, args.threshold)
            for line, slot in zip(batch, slots, strict=True):
                shown = _SPLIT.split(line)[0]
                if isinstance(slot, ItemError):
                    err = {"code": slot.code.value, "message": slot.message}
                    io.json_line({"hash": shown, "error": err})
                else:
                    matches = [m.to_json() for m in results[slot].matches]
                    io.json_line({"hash": shown, "matches": matches})
            io.stdout.flush()
        if not matcher.loaded_from_snapshot or matcher.sequence != matcher.snapshot_sequence:
            matcher.save_snapshot()
    finally:
        matcher.close()
        store.close()
    return ExitCode.OK
