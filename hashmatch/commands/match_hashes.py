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
from typing import TextIO

from hashmatch.banks.model import SignalType, guess_signal
from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.errors import BadParameter, HashmatchError, ItemError
from hashmatch.matching.batch import match_parsed
from hashmatch.matching.model import HashQuery, MatchOptions

BATCH = 1024
_SPLIT = re.compile(r"[,\s]+")


def register(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    p.add_argument("--bank", action="append", default=[], metavar="NAME", help="only this bank")
    p.add_argument("--threshold", type=int, help="PDQ threshold for every bank, this request")
    p.add_argument("--tenant", help="match as this tenant (default: the operator, all banks)")
    p.set_defaults(run=run)


def parse_line(line: str) -> HashQuery | ItemError:
    """One line's query, or its error."""
    try:
        tokens = [t for t in _SPLIT.split(line.strip()) if t]
        parsed = [guess_signal(t) for t in tokens]
        st = parsed[0][0]
        if len(parsed) > 1 and (st is not SignalType.PDQ or any(p[0] is not st for p in parsed)):
            raise BadParameter("only PDQ queries carry several (dihedral) hashes")
        return HashQuery(st, tuple(st.parse_hex(h) for _, h in parsed))
    except HashmatchError as exc:
        return ItemError.from_exception(exc)


def _lines(stdin: TextIO) -> Iterator[str]:
    for line in stdin:
        if line.strip():
            yield line.strip()


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig  # the index loads

    data = data_dir(args)
    store = data.open_banks()
    matcher = BankMatcher.open(store, MatcherConfig(data.snapshot))
    options = MatchOptions(banks=tuple(args.bank), max_distance=args.threshold)
    try:
        lines = _lines(io.stdin)
        while batch := list(islice(lines, BATCH)):
            parsed = [parse_line(line) for line in batch]
            found = match_parsed(matcher, parsed, options, args.tenant, stricter_only=False)
            for line, result in zip(batch, found, strict=True):
                shown = _SPLIT.split(line)[0]
                if isinstance(result, ItemError):
                    err = {"code": result.code.value, "message": result.message}
                    io.json_line({"hash": shown, "error": err})
                else:
                    io.json_line({"hash": shown, "matches": [m.to_json() for m in result.matches]})
            io.stdout.flush()
        if not matcher.loaded_from_snapshot or matcher.sequence != matcher.snapshot_sequence:
            matcher.save_snapshot()
    finally:
        matcher.close()
        store.close()
    return ExitCode.OK
