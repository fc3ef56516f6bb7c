"""Video bank entries (vpdq): a video's frame list stored compactly, its frames' PDQ
hashes in the PDQ index with a back-reference to the video.

The tables live in the bank store's database, beside the bank tables (vpdq_*; on SQLite
created by sqlite_tables.py, so the bank store's schema stays untouched; on PostgreSQL part
of the banks schema), behind the VideoTables Protocol; the logic is here, once:
- vpdq_videos: one row per video entry: bank, label, external id, the VideoHash in its
  compact form (41 bytes a frame) and a digest of it (adding the same video twice to a
  bank is idempotent).
- vpdq_frames: video -> PDQ entry (the back-reference). Each distinct frame hash of
  quality >= the index quality is written as an ordinary PDQ entry of the bank (source
  "vpdq") through BankStore.write_entries, so it reaches the matcher's PDQ index through
  the change log like any entry, and one query frame (or image) finds every video that
  contains it. Frame hashes already in the bank (an image entry, another video) are
  shared, never rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from hashmatch.banks.model import NewEntry, SignalType
from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter, NotFound
from hashmatch.video.features import VideoHash

VPDQ_SOURCE = "vpdq"


@dataclass(frozen=True)
class VideoEntry:
    id: int
    bank_id: int
    label: str | None
    external_id: str | None
    n_frames: int
    duration: float
    added_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "external_id": self.external_id,
            "frames": self.n_frames,
            "duration": round(self.duration, 3),
            "added_at": self.added_at,
        }


# (id, bank_id, label, external_id, n_frames, duration, added_at)
VideoRow = tuple[int, int, str | None, str | None, int, float, str]


class VideoTables(Protocol):
    """The vpdq tables of one database; each method one transaction."""

    def save_video(
        self, bank_id: int, label: str | None, external_id: str | None, blob: bytes,
        digest: bytes, n_frames: int, duration: float, now: str, entry_ids: Iterable[int],
    ) -> int:  # fmt: skip
        """Inserts the video (or revives and relabels the one with this digest in the
        bank) and links it to its frame entries; its id."""
        ...

    def orphan_frame_values(self, bank_id: int, cutoff: str) -> list[bytes]:
        """Live vpdq PDQ entries of the bank added before cutoff that no live video holds."""
        ...

    def tombstone_video(self, bank_id: int, video_id: int, now: str) -> list[int] | None:
        """Tombstones a live video: the entry ids no other live video holds, or None when
        the bank has no such live video."""
        ...

    def video_ids(self, bank_id: int, after_id: int, limit: int) -> list[int]: ...
    def rows(self, ids: Sequence[int]) -> list[VideoRow]: ...
    def frame_blobs(self, ids: Sequence[int]) -> list[tuple[int, bytes]]: ...
    def videos_of(self, entry_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(entry id, live video id) pairs, by video id."""
        ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VideoStore:
    """vpdq entries over a bank store and its database's vpdq tables."""

    def __init__(self, tables: VideoTables, banks: BankStore) -> None:
        self.tables = tables
        self.banks = banks

    def close(self) -> None:
        self.tables.close()

    # -- writing -------------------------------------------------------------------------
    def add_video(
        self,
        bank: str,
        video: VideoHash,
        label: str | None = None,
        external_id: str | None = None,
        index_quality: int = 50,
    ) -> VideoEntry:
        """Adds a video entry (idempotent per bank and frame list) and indexes its distinct
        frame hashes of quality >= index_quality as PDQ entries of the bank.

        Two transactions (the bank store writes the frame entries, then this store the
        video): a crash between leaves frame entries without a video, which a retry of the
        same add adopts, and sweep_orphans removes later (`video-bank add` and server
        start run it; not here, where it would scan the bank once per video)."""
        if not len(video):
            raise BadParameter("a video entry needs at least one frame")
        b = self.banks.get_bank(bank)
        keep = video.quality >= index_quality
        distinct = np.unique(video.hashes[keep], axis=0)
        values = [bytes(h) for h in distinct]
        present = self._live_in_bank(b.id, values)
        new = [v for v in values if v not in present]
        if new:
            self.banks.write_entries(
                bank,
                (NewEntry(SignalType.PDQ, v, label=label, source=VPDQ_SOURCE) for v in new),
            )
        ids = self._live_in_bank(b.id, values)
        blob = video.to_bytes()
        video_id = self.tables.save_video(
            b.id, label, external_id, blob, hashlib.sha256(blob).digest(), len(video),
            video.duration, _now(), ids.values(),
        )  # fmt: skip
        return self.get_entries([video_id])[video_id]

    def sweep_orphans(self, bank: str | None = None, older_than_s: float = 600.0) -> int:
        """Removes frame entries (source vpdq) that no live video refers to, older than
        older_than_s: what a crash between add_video's two transactions (frame entries
        first, then the video) leaves behind. Younger ones may be an add in progress in
        another process. All banks when bank is None; returns how many were removed."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        names = [bank] if bank is not None else [b.name for b in self.banks.list_banks()]
        removed = 0
        for name in names:
            values = self.tables.orphan_frame_values(self.banks.get_bank(name).id, cutoff)
            if values:
                removed += self.banks.remove_entries(name, [(SignalType.PDQ, v) for v in values])
        return removed

    def remove_video(self, bank: str, video_id: int) -> None:
        """Tombstones a video entry, and the PDQ entries only it brought (source vpdq, no
        other live video refers to them)."""
        b = self.banks.get_bank(bank)
        orphans = self.tables.tombstone_video(b.id, video_id, _now())
        if orphans is None:
            raise NotFound(f"no video entry {video_id} in bank {bank!r}")
        entries = self.banks.entries_by_id(orphans)
        values = [
            (SignalType.PDQ, e.value)
            for e in entries.values()
            if e.source == VPDQ_SOURCE and e.removed_at is None
        ]
        if values:
            self.banks.remove_entries(bank, values)

    # -- reading -------------------------------------------------------------------------
    def _live_in_bank(self, bank_id: int, values: Sequence[bytes]) -> dict[bytes, int]:
        found = self.banks.lookup(SignalType.PDQ, values)
        entries = self.banks.entries_by_id([i for ids in found for i in ids])
        out: dict[bytes, int] = {}
        for v, ids in zip(values, found, strict=True):
            for i in ids:
                e = entries.get(i)
                if e is not None and e.bank_id == bank_id and e.removed_at is None:
                    out[v] = i
        return out

    def list_videos(self, bank: str, after_id: int = 0, limit: int = 1000) -> list[VideoEntry]:
        ids = self.tables.video_ids(self.banks.get_bank(bank).id, after_id, limit)
        entries = self.get_entries(ids)
        return [entries[i] for i in ids]

    def get_entries(self, ids: Sequence[int]) -> dict[int, VideoEntry]:
        return {r[0]: VideoEntry(*r) for r in self.tables.rows(ids)}

    def frames(self, ids: Sequence[int]) -> dict[int, VideoHash]:
        """The frame lists of live video entries."""
        return {i: VideoHash.from_bytes(blob) for i, blob in self.tables.frame_blobs(ids)}

    def videos_of_entries(self, entry_ids: Sequence[int]) -> dict[int, list[int]]:
        """The back-reference: PDQ entry id -> ids of the live videos holding that frame."""
        out: dict[int, list[int]] = {}
        for eid, vid in self.tables.videos_of(entry_ids):
            out.setdefault(eid, []).append(vid)
        return out
