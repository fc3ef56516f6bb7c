"""SIGKILL at random points while a process writes entries and snapshots the index (and
folds its segments): after restart the index equals the store, nothing acknowledged lost."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks.model import SignalType
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.index.mih import MihConfig
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
from hashmatch.matching.model import HashQuery

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    import numpy as np
    from hashmatch.banks.model import BankSettings, NewEntry, SignalType
    from hashmatch.banks.sqlite_store import SqliteBankStore
    from hashmatch.index.mih import MihConfig
    from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
    data, seed = Path(sys.argv[1]), int(sys.argv[2])
    store = SqliteBankStore(data / "banks.sqlite3")
    try:
        store.create_bank("b", BankSettings())
    except Exception:
        pass
    # Small tail/merge settings: segments are folded often, so kills land mid-fold too.
    config = MatcherConfig(snapshot_path=data / "index.snapshot", mih=MihConfig(tail_max=64))
    matcher = BankMatcher.open(store, config)
    rng = np.random.default_rng(seed)
    while True:
        codes = rng.integers(0, 256, (200, 32), dtype=np.uint8)
        report = store.write_entries("b", [NewEntry(SignalType.PDQ, c.tobytes()) for c in codes])
        print(json.dumps({"acked": store.current_sequence()}), flush=True)
        matcher.refresh()
        matcher.save_snapshot()
    """
)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_index_equals_store_after_sigkill(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    acked = 0
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(seed * 10 + round_)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        deadline = time.monotonic() + rng.uniform(1.5, 4.0)
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if line:
                acked = max(acked, json.loads(line)["acked"])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert acked > 0
    store = SqliteBankStore(tmp_path / "banks.sqlite3")
    assert store.current_sequence() >= acked  # nothing acknowledged was lost
    live = store.live_signals()
    seq = live.sequence
    ids, codes = live.signals[SignalType.PDQ]
    config = MatcherConfig(snapshot_path=tmp_path / "index.snapshot", mih=MihConfig(tail_max=64))
    with BankMatcher.open(store, config) as matcher:
        assert matcher.sequence == seq
        assert matcher.stats()["pdq"] == len(ids)
        # Every stored code is found (distance 0), and nothing that is not stored is.
        sample = np.random.default_rng(seed).choice(
            len(ids), size=min(200, len(ids)), replace=False
        )
        queries = [HashQuery(SignalType.PDQ, (codes[k].tobytes(),)) for k in sample]
        for k, result in zip(sample, matcher.match(queries, threshold=0), strict=True):
            assert [m.entry_id for m in result.matches] == [int(ids[k])]
        stranger = np.random.default_rng(999).integers(0, 256, 32, dtype=np.uint8).tobytes()
        assert matcher.match([HashQuery(SignalType.PDQ, (stranger,))], threshold=0)[0].matches == ()
    store.close()
