"""The matcher: bank store + indexes, kept in step with the store's change log.

One Matcher serves match requests over every enabled bank a caller may see. It is built
from a snapshot (checked against the store) or from the store, then follows the store's
change log: `refresh()` applies committed changes incrementally (no rebuild), and
`start()` runs it in a background thread every `poll_interval_s`, so several servers over
one database converge within a second of a commit.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashmatch.banks.model import Bank, BankKind, ChangeKind, Entry, SignalType
from hashmatch.banks.store import BankStore
from hashmatch.config import IndexChoice
from hashmatch.errors import BadParameter, NotFound
from hashmatch.hashing.signature import Signature
from hashmatch.index.exact import ExactHashIndex
from hashmatch.index.mih import MihConfig, MultiIndexHashIndex
from hashmatch.index.protocol import PdqIndex
from hashmatch.index.snapshot import SnapshotError, read_snapshot, write_snapshot

_log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = "hashmatch-matcher-1"
MAX_VARIANTS = 8


@dataclass(frozen=True)
class MatcherConfig:
    snapshot_path: Path | None = None
    poll_interval_s: float = 0.2
    mih: MihConfig = field(default_factory=MihConfig)
    # The PDQ index: multi-index hashing on the CPU, or an exact scan on a CUDA device.
    pdq_index: IndexChoice = IndexChoice.MIH


def _pdq_index(ids: np.ndarray, codes: np.ndarray, config: MatcherConfig) -> PdqIndex:
    if config.pdq_index is IndexChoice.GPU:
        from hashmatch.index.gpu_flat import GpuFlatIndex

        return GpuFlatIndex.from_arrays(ids, codes)
    return MultiIndexHashIndex.from_arrays(ids, codes, config.mih)


@dataclass(frozen=True)
class HashQuery:
    """One query: a signal type and its value; for PDQ optionally all 8 dihedral hashes
    (the original first) and the hash's quality."""

    signal_type: SignalType
    values: tuple[bytes, ...]
    quality: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.values) <= (MAX_VARIANTS if self.signal_type is SignalType.PDQ else 1):
            raise BadParameter(f"a {self.signal_type.value} query has 1 to 8 values")
        if any(len(v) != self.signal_type.nbytes for v in self.values):
            raise BadParameter(
                f"a {self.signal_type.value} value is {self.signal_type.nbytes} bytes"
            )


def queries_for(signature: Signature, dihedral: bool = True) -> list[HashQuery]:
    """The queries of one hashed image: its PDQ (with the 8 dihedral hashes when the engine
    computed them and `dihedral`, and its quality), its MD5 and its SHA-256."""
    pdq = (signature.dihedral if dihedral else None) or (signature.pdq,)
    return [
        HashQuery(SignalType.PDQ, tuple(h.value for h in pdq), signature.quality),
        HashQuery(SignalType.MD5, (signature.md5,)),
        HashQuery(SignalType.SHA256, (signature.sha256,)),
    ]


@dataclass(frozen=True)
class Suppressor:
    bank: str
    entry_id: int
    distance: int


@dataclass(frozen=True)
class Match:
    bank: str
    entry_id: int
    signal_type: SignalType
    value: bytes
    distance: int
    label: str | None
    dihedral: int = 0  # which of the query's hashes matched (0: the original)
    suppressed_by: Suppressor | None = None
    source: str | None = None  # the entry's source (the sandbox's say "Test")

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "value": self.value.hex(),
            "distance": self.distance,
            "label": self.label,
        }
        if self.dihedral:
            out["dihedral"] = self.dihedral
        if self.suppressed_by is not None:
            s = self.suppressed_by
            out["suppressed_by"] = {"bank": s.bank, "entry_id": s.entry_id, "distance": s.distance}
        return out


@dataclass(frozen=True)
class MatchResult:
    matches: tuple[Match, ...]

    @property
    def is_match(self) -> bool:
        return any(m.suppressed_by is None for m in self.matches)


@dataclass
class _Hit:
    entry: Entry
    bank: Bank
    distance: int
    variant: int


class Matcher:
    def __init__(
        self,
        store: BankStore,
        config: MatcherConfig,
        pdq: PdqIndex,
        exact: dict[SignalType, ExactHashIndex],
        sequence: int,
    ) -> None:
        self.store = store
        self.config = config
        self._pdq = pdq
        self._exact = exact
        self._seq = sequence
        self._banks: dict[int, Bank] = store.banks_by_id()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_from_snapshot = False
        # The last error of the background follower (None when its last pass worked):
        # for health checks.
        self.follow_error: str | None = None
        # The sequence of the snapshot this matcher was loaded from or last saved (-1: none).
        self.snapshot_sequence = -1

    # -- life cycle ----------------------------------------------------------------------
    @classmethod
    def open(cls, store: BankStore, config: MatcherConfig | None = None) -> Matcher:
        """From the snapshot when it is usable (same store, not ahead of it), else from
        the store; then caught up with the change log."""
        config = config or MatcherConfig()
        matcher = None
        if config.snapshot_path is not None and config.snapshot_path.exists():
            try:
                matcher = cls._from_snapshot(store, config)
            except SnapshotError:
                matcher = None
        if matcher is None:
            matcher = cls._from_store(store, config)
        matcher.refresh()
        return matcher

    @classmethod
    def _from_store(cls, store: BankStore, config: MatcherConfig) -> Matcher:
        seq, live = store.live_signals()
        ids, codes = live[SignalType.PDQ]
        pdq = _pdq_index(ids, codes, config)
        exact = {st: ExactHashIndex(st.nbytes) for st in (SignalType.MD5, SignalType.SHA256)}
        for st, ex in exact.items():
            ex.add(*live[st])
        return cls(store, config, pdq, exact, seq)

    @classmethod
    def _from_snapshot(cls, store: BankStore, config: MatcherConfig) -> Matcher:
        if config.snapshot_path is None:
            raise SnapshotError("no snapshot path configured")
        header, arrays = read_snapshot(config.snapshot_path)
        if header.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError("snapshot of another format")
        if header.get("store_id") != store.store_id:
            raise SnapshotError("snapshot of another database")
        seq = header.get("sequence")
        if not isinstance(seq, int) or seq > store.current_sequence():
            raise SnapshotError("snapshot ahead of the database (restored from a backup?)")
        try:
            pdq = _pdq_index(arrays["pdq_ids"], arrays["pdq_values"], config)
            exact = {}
            for st in (SignalType.MD5, SignalType.SHA256):
                exact[st] = ExactHashIndex(st.nbytes)
                exact[st].add(arrays[f"{st.value}_ids"], arrays[f"{st.value}_values"])
        except (KeyError, BadParameter, ValueError) as exc:
            raise SnapshotError(f"snapshot arrays unusable ({type(exc).__name__})") from None
        matcher = cls(store, config, pdq, exact, seq)
        matcher.loaded_from_snapshot = True
        matcher.snapshot_sequence = seq
        return matcher

    def save_snapshot(self, path: Path | None = None) -> Path:
        """Writes the snapshot atomically (temp file + os.replace)."""
        path = path or self.config.snapshot_path
        if path is None:
            raise BadParameter("no snapshot path configured")
        with self._refresh_lock:  # a state that matches one sequence number
            pdq_ids, pdq_values = self._pdq.live_arrays()
            arrays = {"pdq_ids": pdq_ids, "pdq_values": pdq_values}
            for st, ex in self._exact.items():
                arrays[f"{st.value}_ids"], arrays[f"{st.value}_values"] = ex.arrays()
            header = {
                "format": SNAPSHOT_FORMAT,
                "store_id": self.store.store_id,
                "sequence": self._seq,
            }
            write_snapshot(path, header, arrays)
            self.snapshot_sequence = self._seq
        return path

    def start(self) -> None:
        """Follow the change log in a background thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="hashmatch-follower", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.config.poll_interval_s):
            try:
                self.refresh()
                self.follow_error = None
            except Exception as exc:  # keep following: a locked or briefly absent DB heals
                self.follow_error = f"{type(exc).__name__}: {exc}"
                _log.exception("applying the change log failed; retrying")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pdq.close()

    def __enter__(self) -> Matcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sequence(self) -> int:
        """The last change-log sequence number applied."""
        return self._seq

    def stats(self) -> dict[str, int]:
        return {
            "sequence": self._seq,
            "pdq": len(self._pdq),
            "md5": len(self._exact[SignalType.MD5]),
            "sha256": len(self._exact[SignalType.SHA256]),
        }

    # -- following the change log --------------------------------------------------------
    def refresh(self, batch: int = 100_000) -> int:
        """Applies every change committed since the last call; returns how many."""
        applied = 0
        with self._refresh_lock:
            while changes := self.store.changes_since(self._seq, batch):
                run_kind: tuple[ChangeKind, SignalType] | None = None
                run_ids: list[int] = []
                run_values: list[bytes] = []
                banks_changed = False
                for ch in changes:
                    if ch.kind is ChangeKind.BANK:
                        banks_changed = True
                        continue
                    if ch.signal_type is None or ch.value is None or ch.entry_id is None:
                        continue
                    key = (ch.kind, ch.signal_type)
                    if key != run_kind:
                        self._apply(run_kind, run_ids, run_values)
                        run_kind, run_ids, run_values = key, [], []
                    run_ids.append(ch.entry_id)
                    run_values.append(ch.value)
                self._apply(run_kind, run_ids, run_values)
                if banks_changed:
                    self._banks = self.store.banks_by_id()
                self._seq = changes[-1].seq
                applied += len(changes)
        return applied

    def _apply(
        self, kind: tuple[ChangeKind, SignalType] | None, ids: list[int], values: list[bytes]
    ) -> None:
        if kind is None or not ids:
            return
        op, st = kind
        id_arr = np.array(ids, dtype=np.int64)
        val_arr = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, st.nbytes)
        if st is SignalType.PDQ:
            if op is ChangeKind.ADD:
                self._pdq.add(id_arr, val_arr)
            else:
                self._pdq.remove(id_arr)
        elif op is ChangeKind.ADD:
            self._exact[st].add(id_arr, val_arr)
        else:
            self._exact[st].remove(id_arr, val_arr)

    # -- matching ------------------------------------------------------------------------
    def visible_banks(self, tenant: str | None = None, names: Sequence[str] = ()) -> list[Bank]:
        """Enabled banks the tenant may see (None: the operator, all), limited to `names`."""
        banks = list(self._banks.values())
        if names:
            by_name = {b.name: b for b in banks if b.visible_to(tenant)}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise NotFound(f"no bank named {missing[0]!r}")
            banks = [by_name[n] for n in dict.fromkeys(names)]
        return [b for b in banks if b.enabled and b.visible_to(tenant)]

    def match(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None = None,
        banks: Sequence[str] = (),
        threshold: int | None = None,
        *,
        stricter_only: bool = False,
    ) -> list[MatchResult]:
        """One result per query, in order. `threshold` overrides every bank's PDQ threshold
        for this request (with stricter_only, as the API does for tenants, it can only
        lower a bank's threshold); `banks` limits the request to these bank names."""
        if threshold is not None and not 0 <= threshold <= 256:
            raise BadParameter("threshold must be in [0, 256]")
        visible = {b.id: b for b in self.visible_banks(tenant, banks)}
        hits: list[list[_Hit]] = [[] for _ in queries]
        self._pdq_hits(queries, visible, threshold, hits, stricter_only)
        self._exact_hits(queries, visible, hits)
        return [self._result(h) for h in hits]

    def _pdq_hits(
        self,
        queries: Sequence[HashQuery],
        visible: dict[int, Bank],
        threshold: int | None,
        hits: list[list[_Hit]],
        stricter_only: bool = False,
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

        def effective(bank: Bank) -> int:
            if threshold is None:
                return bank.pdq_threshold
            return min(bank.pdq_threshold, threshold) if stricter_only else threshold

        thresholds = {b.id: effective(b) for b in pdq_banks}
        radius = max(thresholds.values())
        codes = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, 32)
        found = self._pdq.range_search(codes, radius)
        entries = self.store.entries_by_id(found.ids.tolist())
        best: list[dict[int, _Hit]] = [{} for _ in queries]
        for row in range(found.n_queries):
            qi = owner[row]
            q = queries[qi]
            ids, dists = found.of(row)
            for eid, d in zip(ids.tolist(), dists.tolist(), strict=True):
                e = entries.get(eid)
                bank = visible.get(e.bank_id) if e is not None else None
                if e is None or bank is None or e.removed_at is not None:
                    continue
                if SignalType.PDQ not in bank.signal_types or d > thresholds.get(bank.id, -1):
                    continue
                if q.quality is not None and q.quality < bank.min_quality:
                    continue
                held = best[qi].get(eid)
                if held is None or d < held.distance:
                    best[qi][eid] = _Hit(e, bank, d, variant[row])
        for qi, b in enumerate(best):
            hits[qi].extend(b.values())

    def _exact_hits(
        self, queries: Sequence[HashQuery], visible: dict[int, Bank], hits: list[list[_Hit]]
    ) -> None:
        for st, ex in self._exact.items():
            pos = [i for i, q in enumerate(queries) if q.signal_type is st]
            if not pos:
                continue
            found = ex.lookup([queries[i].values[0] for i in pos])
            entries = self.store.entries_by_id([e for ids in found for e in ids])
            for qi, ids in zip(pos, found, strict=True):
                for eid in ids:
                    e = entries.get(eid)
                    bank = visible.get(e.bank_id) if e is not None else None
                    if e is None or bank is None or e.removed_at is not None:
                        continue
                    if st in bank.signal_types:
                        hits[qi].append(_Hit(e, bank, 0, 0))

    @staticmethod
    def _result(hits: list[_Hit]) -> MatchResult:
        allow = [h for h in hits if h.bank.kind is BankKind.ALLOW]
        block = [h for h in hits if h.bank.kind is BankKind.BLOCK]
        suppressor = None
        if allow:
            a = min(allow, key=lambda h: (h.distance, h.entry.id))
            suppressor = Suppressor(a.bank.name, a.entry.id, a.distance)
        block.sort(key=lambda h: (h.distance, h.bank.name, h.entry.id))
        return MatchResult(
            tuple(
                Match(
                    bank=h.bank.name,
                    entry_id=h.entry.id,
                    signal_type=h.entry.signal_type,
                    value=h.entry.value,
                    distance=h.distance,
                    label=h.entry.label,
                    dihedral=h.variant,
                    suppressed_by=suppressor,
                    source=h.entry.source,
                )
                for h in block
            )
        )
