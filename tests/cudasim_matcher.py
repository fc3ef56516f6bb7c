"""Run under NUMBA_ENABLE_CUDASIM=1 (tests/test_cuda_kernels.py does): the bank matcher
with the GPU PDQ index answers exactly as with the CPU (MIH) index, before and after the
store changes under it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me under the CUDA simulator"

from hashmatch.banks.model import BankSettings, NewEntry, SignalType  # noqa: E402
from hashmatch.banks.sqlite_store import SqliteBankStore  # noqa: E402
from hashmatch.config import IndexChoice  # noqa: E402
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig  # noqa: E402
from hashmatch.matching.model import HashQuery  # noqa: E402


def near(rng: np.random.Generator, code: np.ndarray, flips: int) -> bytes:
    bits = np.unpackbits(code)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits).tobytes()


def answers(matcher: BankMatcher, queries: list[HashQuery]) -> list[set[tuple[str, int, int]]]:
    return [{(m.bank, m.entry_id, m.distance) for m in r.matches} for r in matcher.match(queries)]


def main() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (120, 32), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteBankStore(Path(tmp) / "banks.sqlite")
        store.create_bank("list", BankSettings())
        store.write_entries("list", [NewEntry(SignalType.PDQ, c.tobytes()) for c in codes[:80]])
        cpu = BankMatcher.open(store, MatcherConfig())
        gpu = BankMatcher.open(store, MatcherConfig(pdq_index=IndexChoice.GPU))
        picks = rng.integers(0, 120, 30)
        queries = [HashQuery(SignalType.PDQ, (near(rng, codes[k], int(rng.integers(0, 45))),))
                   for k in picks]  # fmt: skip
        first = answers(gpu, queries)
        assert first == answers(cpu, queries) and any(first) and not all(first)
        store.write_entries("list", [NewEntry(SignalType.PDQ, c.tobytes()) for c in codes[80:]])
        cpu.refresh()
        gpu.refresh()
        second = answers(gpu, queries)
        assert second == answers(cpu, queries) and sum(map(len, second)) > sum(map(len, first))
        cpu.close()
        gpu.close()
        store.close()
    print("cudasim matcher ok")


if __name__ == "__main__":
    main()
    sys.exit(0)
