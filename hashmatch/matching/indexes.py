"""The in-memory state of a bank matcher at one change-log sequence number: the PDQ index,
the exact MD5/SHA-256 lookups and the entry catalog, updated in place from the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hashmatch.banks.model import Change, ChangeKind, LiveState, SignalType
from hashmatch.config import IndexChoice
from hashmatch.index.exact import ExactHashIndex
from hashmatch.index.mih import MihConfig, MultiIndexHashIndex
from hashmatch.index.protocol import PdqIndex
from hashmatch.matching.catalog import EntryCatalog

EXACT_SIGNALS = (SignalType.MD5, SignalType.SHA256)


@dataclass(frozen=True)
class IndexConfig:
    mih: MihConfig = field(default_factory=MihConfig)
    # The PDQ index: multi-index hashing on the CPU, or an exact scan on a CUDA device.
    pdq_index: IndexChoice = IndexChoice.MIH


def pdq_index(ids: np.ndarray, codes: np.ndarray, config: IndexConfig) -> PdqIndex:
    if config.pdq_index is IndexChoice.GPU:
        from hashmatch.index.gpu_flat import GpuFlatIndex  # needs numba.cuda and a device

        return GpuFlatIndex.from_arrays(ids, codes)
    return MultiIndexHashIndex.from_arrays(ids, codes, config.mih)


@dataclass
class IndexSet:
    pdq: PdqIndex
    exact: dict[SignalType, ExactHashIndex]
    catalog: EntryCatalog
    sequence: int

    @classmethod
    def from_live(cls, live: LiveState, config: IndexConfig) -> IndexSet:
        ids, codes = live.signals[SignalType.PDQ]
        exact = {st: ExactHashIndex(st.nbytes) for st in EXACT_SIGNALS}
        for st, ex in exact.items():
            ex.add(*live.signals[st])
        catalog = EntryCatalog()
        catalog.put(live.ids, live.bank_ids, live.labels, live.sources)
        return cls(pdq_index(ids, codes, config), exact, catalog, live.sequence)

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], sequence: int, config: IndexConfig
    ) -> IndexSet:
        """The inverse of arrays(); KeyError or ValueError for arrays that do not fit."""
        exact = {}
        for st in EXACT_SIGNALS:
            exact[st] = ExactHashIndex(st.nbytes)
            exact[st].add(arrays[f"{st.value}_ids"], arrays[f"{st.value}_values"])
        pdq = pdq_index(arrays["pdq_ids"], arrays["pdq_values"], config)
        return cls(pdq, exact, EntryCatalog.from_arrays(arrays), sequence)

    def arrays(self) -> dict[str, np.ndarray]:
        pdq_ids, pdq_values = self.pdq.live_arrays()
        out = {"pdq_ids": pdq_ids, "pdq_values": pdq_values}
        for st, ex in self.exact.items():
            out[f"{st.value}_ids"], out[f"{st.value}_values"] = ex.arrays()
        out.update(self.catalog.arrays())
        return out

    def stats(self) -> dict[str, int]:
        return {
            "sequence": self.sequence,
            "pdq": len(self.pdq),
            "md5": len(self.exact[SignalType.MD5]),
            "sha256": len(self.exact[SignalType.SHA256]),
        }

    def apply(self, changes: Sequence[Change]) -> bool:
        """Applies changes in order (runs of one kind and signal type at a time); True
        when a bank's settings changed."""
        banks_changed = False
        run: list[Change] = []
        for ch in changes:
            if ch.kind is ChangeKind.BANK:
                banks_changed = True
                continue
            if ch.signal_type is None or ch.value is None or ch.entry_id is None:
                continue  # an entry since purged: nothing to apply
            if run and (run[0].kind, run[0].signal_type) != (ch.kind, ch.signal_type):
                self._apply_run(run)
                run = []
            run.append(ch)
        if run:
            self._apply_run(run)
        if changes:
            self.sequence = changes[-1].seq
        return banks_changed

    def _apply_run(self, run: list[Change]) -> None:
        # The last change of an entry in the run wins (a relabel after its add).
        last = {ch.entry_id: ch for ch in run}
        chs = list(last.values())
        st = chs[0].signal_type
        if st is None:  # apply passes only changes with a signal type
            return
        ids = np.array([ch.entry_id for ch in chs], dtype=np.int64)
        values = np.frombuffer(b"".join(ch.value or b"" for ch in chs), dtype=np.uint8)
        values = values.reshape(-1, st.nbytes)
        if chs[0].kind is ChangeKind.REMOVE:
            self._remove(st, ids, values)
            return
        # An ADD of an entry already held is a relabel: the catalog only.
        new = ~self.catalog.holds(ids)
        self._add(st, ids[new], values[new])
        bank_ids = np.array([ch.bank_id for ch in chs], dtype=np.int32)
        self.catalog.put(ids, bank_ids, [ch.label for ch in chs], [ch.source for ch in chs])

    def _add(self, st: SignalType, ids: np.ndarray, values: np.ndarray) -> None:
        if not ids.size:
            return
        if st is SignalType.PDQ:
            self.pdq.add(ids, values)
        else:
            self.exact[st].add(ids, values)

    def _remove(self, st: SignalType, ids: np.ndarray, values: np.ndarray) -> None:
        if st is SignalType.PDQ:
            self.pdq.remove(ids)
        else:
            self.exact[st].remove(ids, values)
        self.catalog.drop(ids)

    def close(self) -> None:
        self.pdq.close()
