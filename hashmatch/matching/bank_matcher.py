"""The bank matcher: the banks' indexes in memory, kept in step with the store's change log.

One BankMatcher serves match requests over every enabled bank a caller may see. It is
opened from a snapshot (checked against the store) or from the store, then `refresh()`
applies committed changes incrementally (no rebuild); hashmatch.matching.follower runs
that in the background. A match reads no database: entry metadata is in the catalog.

Matching rules:
- PDQ: every entry within its bank's threshold (or the request's override) of any of the
  query's hashes (the 8 dihedral variants when sent; the result says which matched).
- MD5 / SHA-256: equal values.
- Allow banks (known false positives): when a query also hits an allow-bank entry (equal
  value, or within that bank's own threshold), its matches are reported as suppressed, by
  the closest allow entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashmatch.banks.model import (
    DEFAULT_PDQ_THRESHOLD,
    Bank,
    BankKind,
    ChangeKind,
    SignalType,
)
from hashmatch.banks.store import BankStore
from hashmatch.config import IndexChoice
from hashmatch.errors import BadParameter, NotFound
from hashmatch.index.mih import MihConfig
from hashmatch.index.snapshot import SnapshotError
from hashmatch.matching.indexes import IndexConfig, IndexSet
from hashmatch.matching.model import HashQuery, Match, MatchResult, Suppressor
from hashmatch.matching.snapshot import load_snapshot, save_snapshot

_log = logging.getLogger(__name__)

# The suppressor's bank name on a match the caller marked a false positive (feedback).
FEEDBACK = "feedback"


@dataclass(frozen=True)
class MatcherConfig:
    snapshot_path: Path | None = None
    mih: MihConfig = field(default_factory=MihConfig)
    # The PDQ index: multi-index hashing on the CPU, or an exact scan on a CUDA device.
    pdq_index: IndexChoice = IndexChoice.MIH
    # The installation's ceiling on every bank's PDQ threshold ([banks] max_pdq_threshold).
    max_pdq_threshold: int = DEFAULT_PDQ_THRESHOLD
    # Matches one query answers, the closest in the order shown ([banks] max_matches): a
    # tenant's own bank of 100,000 near-identical entries made one item's answer 3 MB.
    max_matches: int = 100

    @property
    def indexes(self) -> IndexConfig:
        return IndexConfig(self.mih, self.pdq_index)


@dataclass(frozen=True, slots=True)
class _Hit:
    entry_id: int
    bank: Bank
    signal_type: SignalType
    distance: int
    variant: int
    label: str | None
    source: str | None


class BankMatcher:
    def __init__(self, store: BankStore, config: MatcherConfig, indexes: IndexSet) -> None:
        self.store = store
        self.config = config
        self._indexes = indexes
        self._banks: dict[int, Bank] = store.banks_by_id()
        # Changes and snapshots one at a time; matching reads without it.
        self._refresh_lock = threading.Lock()
        self.loaded_from_snapshot = False
        # The sequence of the snapshot this matcher was loaded from or last saved (-1: none).
        self.snapshot_sequence = -1

    # -- life cycle ----------------------------------------------------------------------
    @classmethod
    def open(cls, store: BankStore, config: MatcherConfig | None = None) -> BankMatcher:
        """From the snapshot when it is usable (same store, not ahead of it), else from
        the store; then caught up with the change log."""
        config = config or MatcherConfig()
        path = config.snapshot_path
        if path is not None and path.exists():
            try:
                matcher = cls(store, config, load_snapshot(path, store, config.indexes))
                matcher.loaded_from_snapshot = True
                matcher.snapshot_sequence = matcher.sequence
            except SnapshotError as exc:
                _log.info("index snapshot not used (%s): building from the store", exc.message)
                matcher = cls._from_store(store, config)
        else:
            matcher = cls._from_store(store, config)
        matcher.refresh()
        return matcher

    @classmethod
    def _from_store(cls, store: BankStore, config: MatcherConfig) -> BankMatcher:
        return cls(store, config, IndexSet.from_live(store.live_signals(), config.indexes))

    def save_snapshot(self, path: Path | None = None) -> Path:
        """Writes the snapshot atomically, consistent with one sequence number."""
        path = path or self.config.snapshot_path
        if path is None:
            raise BadParameter("no snapshot path configured")
        with self._refresh_lock:
            save_snapshot(path, self.store.store_id, self._indexes)
            self.snapshot_sequence = self._indexes.sequence
        return path

    def close(self) -> None:
        self._indexes.close()

    def __enter__(self) -> BankMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sequence(self) -> int:
        """The last change-log sequence number applied."""
        return self._indexes.sequence

    def stats(self) -> dict[str, int]:
        return self._indexes.stats()

    @property
    def size(self) -> int:
        """Live entries held, all signal types."""
        s = self.stats()
        return s["pdq"] + s["md5"] + s["sha256"]

    # -- following the change log --------------------------------------------------------
    def refresh(self, batch: int = 100_000) -> int:
        """Applies every change committed since the last call; returns how many."""
        applied = 0
        with self._refresh_lock:
            while changes := self.store.changes_since(self._indexes.sequence, batch):
                # Banks read before the entries are applied (as of now: never older than
                # these changes), so a deleted or disabled bank stops matching at once.
                if any(ch.kind is ChangeKind.BANK for ch in changes):
                    self._banks = self.store.banks_by_id()
                self._indexes.apply(changes)
                applied += len(changes)
        return applied

    # -- matching ------------------------------------------------------------------------
    def visible_banks(self, tenant: str | None = None, names: Sequence[str] = ()) -> list[Bank]:
        """Enabled banks taking part in the tenant's matching (None: the local operator,
        all), limited to `names`: its own, public ones, and shares it accepted."""
        banks = list(self._banks.values())
        if names:
            by_name = {b.name: b for b in banks if b.applies_to(tenant)}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise NotFound(f"no bank named {missing[0]!r}")
            banks = [by_name[n] for n in dict.fromkeys(names)]
        return [b for b in banks if b.enabled and b.applies_to(tenant)]

    def pdq_threshold_of(self, bank: Bank) -> int:
        """The bank's PDQ threshold, never looser than the installation allows (a bank
        created with 128 bits would match half of all hashes)."""
        return min(bank.pdq_threshold, self.config.max_pdq_threshold)

    def match(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None = None,
        banks: Sequence[str] = (),
        threshold: int | None = None,
        *,
        stricter_only: bool = False,
        suppressed: Collection[int] = (),
    ) -> list[MatchResult]:
        """One result per query, in order (see hashmatch.matching.protocol.Matcher)."""
        if threshold is not None and not 0 <= threshold <= 256:
            raise BadParameter("threshold must be in [0, 256]")
        visible = {b.id: b for b in self.visible_banks(tenant, banks)}
        hits: list[list[_Hit]] = [[] for _ in queries]
        self._pdq_hits(queries, tenant, visible, threshold, hits, stricter_only)
        self._exact_hits(queries, visible, hits)
        return [_result(h, suppressed, tenant, self.config.max_matches) for h in hits]

    def _pdq_hits(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None,
        visible: dict[int, Bank],
        threshold: int | None,
        hits: list[list[_Hit]],
        stricter_only: bool,
    ) -> None:
        pdq_banks = [b for b in visible.values() if SignalType.PDQ in b.signal_types]
        if not pdq_banks:
            return
        owner: list[int] = []
        variant: list[int] = []
        blobs: list[bytes] = []
        for qi, q in enumerate(queries):
            if q.signal_type is SignalType.PDQ:
                for vi, v in enumerate(q.values):
                    owner.append(qi)
                    variant.append(vi)
                    blobs.append(v)
        if not blobs:
            return

        thresholds = {
            b.id: b.threshold_for(tenant, self.pdq_threshold_of(b), threshold, stricter_only)
            for b in pdq_banks
        }
        codes = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, 32)
        found = self._indexes.pdq.range_search(codes, max(thresholds.values()))
        meta = self._indexes.catalog.meta(found.ids)
        bank_of = meta.bank_ids.tolist()
        dists = found.distances.tolist()
        ids = found.ids.tolist()
        lims = found.lims.tolist()
        best: list[dict[int, _Hit]] = [{} for _ in queries]
        for row in range(found.n_queries):
            qi = owner[row]
            quality = queries[qi].quality
            for k in range(lims[row], lims[row + 1]):
                bank = visible.get(bank_of[k])
                d = dists[k]
                if bank is None or d > thresholds.get(bank.id, -1):
                    continue
                if quality is not None and quality < bank.min_quality:
                    continue
                eid = ids[k]
                held = best[qi].get(eid)
                if held is None or d < held.distance:
                    best[qi][eid] = _Hit(eid, bank, SignalType.PDQ, d, variant[row],
                                         meta.labels[k], meta.sources[k])  # fmt: skip
        for qi, b in enumerate(best):
            hits[qi].extend(b.values())

    def _exact_hits(
        self, queries: Sequence[HashQuery], visible: dict[int, Bank], hits: list[list[_Hit]]
    ) -> None:
        for st, ex in self._indexes.exact.items():
            pos = [i for i, q in enumerate(queries) if q.signal_type is st]
            if not pos:
                continue
            found = ex.lookup([queries[i].values[0] for i in pos])
            flat = [eid for ids in found for eid in ids]
            meta = self._indexes.catalog.meta(np.array(flat, dtype=np.int64))
            k = 0
            for qi, ids in zip(pos, found, strict=True):
                for eid in ids:
                    bank = visible.get(int(meta.bank_ids[k]))
                    if bank is not None and st in bank.signal_types:
                        hits[qi].append(_Hit(eid, bank, st, 0, 0, meta.labels[k], meta.sources[k]))
                    k += 1


def _result(
    hits: list[_Hit], suppressed: Collection[int], tenant: str | None, max_matches: int
) -> MatchResult:
    """Closest first, by each distance as the bank's policy lets this caller see it: an
    order by the exact ones would place another tenant's match among the caller's own
    entries at known distances, and so tell the distance its bucket hides."""

    def order(h: _Hit) -> tuple[int, str, int]:
        return h.bank.distance_for(tenant, h.distance), h.bank.name, h.entry_id

    allow = [h for h in hits if h.bank.kind is BankKind.ALLOW]
    block = [h for h in hits if h.bank.kind is BankKind.BLOCK]
    suppressor = None
    if allow:
        a = min(allow, key=order)
        suppressor = Suppressor(a.bank.name, a.entry_id, a.bank.distance_for(tenant, a.distance))
    block.sort(key=order)
    kept, rest = block[:max_matches], block[max_matches:]
    return MatchResult(
        tuple(
            Match(
                bank=h.bank.name,
                entry_id=h.entry_id,
                signal_type=h.signal_type,
                distance=h.bank.distance_for(tenant, h.distance),
                label=h.label,
                dihedral=h.variant,
                suppressed_by=suppressor
                or (Suppressor(FEEDBACK, h.entry_id, 0) if h.entry_id in suppressed else None),
                source=h.source,
            )
            for h in kept
        ),
        left_out=len(rest),
        left_out_match=suppressor is None and any(h.entry_id not in suppressed for h in rest),
    )
