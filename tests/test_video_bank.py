"""vpdq bank entries: compact frame lists, frame hashes in the PDQ index with a
back-reference, and matching a video against the banks (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks.model import BankSettings, DistancePolicy, SignalType, Visibility
from hashmatch.banks.postgres_store import PostgresBankStore
from hashmatch.banks.store import BankStore
from hashmatch.config import VideoConfig
from hashmatch.errors import NotFound, TooLarge
from hashmatch.matching.bank_matcher import BankMatcher
from hashmatch.matching.model import HashQuery
from hashmatch.video.compare import VideoMatchOptions
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher
from hashmatch.video.matching import VideoBankMatcher
from hashmatch.video.postgres_tables import PostgresVideoTables
from hashmatch.video.sqlite_tables import SqliteVideoTables
from hashmatch.video.store import VideoStore, VideoTables
from tests.conftest import BankOpener
from tests.video_helpers import write_video

HASHER = VideoHasher(VideoConfig(seconds_per_hash=0.5))


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VideoHash]:
    d = tmp_path_factory.mktemp("bankclips")
    return {
        "a": HASHER.hash(write_video(d / "a.mp4", [1, 2, 3, 4])),
        "a_small": HASHER.hash(write_video(d / "as.mp4", [1, 2, 3, 4], size=(96, 72))),
        "b": HASHER.hash(write_video(d / "b.mp4", [5, 6, 7, 8])),
        "ab": HASHER.hash(write_video(d / "ab.mp4", [1, 2, 3, 4, 5, 6, 7, 8])),
        "other": HASHER.hash(write_video(d / "o.mp4", [20, 21, 22, 23])),
    }


@pytest.fixture()
def stores(open_bank_store: BankOpener, tmp_path: Path) -> Iterator[tuple[BankStore, VideoStore]]:
    banks = open_bank_store()
    banks.create_bank("known", BankSettings())
    banks.create_bank("strict", BankSettings(pdq_threshold=0))
    tables: VideoTables
    if isinstance(banks, PostgresBankStore):
        tables = PostgresVideoTables(banks.url)
    else:
        tables = SqliteVideoTables(tmp_path / "banks.sqlite3")
    videos = VideoStore(tables, banks)
    yield banks, videos
    videos.close()
    banks.close()


def test_frames_go_to_the_pdq_index_with_a_back_reference(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    banks, store = stores
    entry = store.add_video("known", videos["a"], label="clip-a", external_id="x1")
    assert entry.n_frames == 8 and entry.label == "clip-a"
    assert store.add_video("known", videos["a"], label="clip-a", external_id="x1") == entry
    pdq_count = banks.count_entries("known")[SignalType.PDQ]
    assert 0 < pdq_count <= 8
    back = store.frames([entry.id])[entry.id]
    assert (back.hashes == videos["a"].hashes).all()
    # One query frame finds the video through the PDQ index.
    with BankMatcher.open(banks) as matcher:
        [result] = matcher.match([HashQuery(SignalType.PDQ, (bytes(videos["a"].hashes[3]),))])
        ids = [m.entry_id for m in result.matches]
        assert store.videos_of_entries(ids) == {ids[0]: [entry.id]}


def test_match_a_video_against_the_banks(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    banks, store = stores
    a = store.add_video("known", videos["a"], label="a")
    store.add_video("known", videos["b"], label="b")
    with BankMatcher.open(banks) as matcher:
        vm = VideoBankMatcher(matcher, store)
        [hit] = vm.match(videos["a_small"], VideoMatchOptions())
        assert (hit.bank, hit.video_id, hit.label) == ("known", a.id, "a")
        assert hit.comparison.query_match_percent == 100.0
        assert [(r.start, r.end) for r in hit.comparison.target_ranges] == [(0.0, 4.0)]
        assert vm.match(videos["other"], VideoMatchOptions()) == []
        # A longer video containing both: each stored video is fully covered, the query
        # half; with the query share relaxed both are found with their place in the query.
        assert vm.match(videos["ab"], VideoMatchOptions()) == []
        hits = vm.match(videos["ab"], VideoMatchOptions(query_match_percent=40))
        got = {h.label: [(r.start, r.end) for r in h.comparison.query_ranges] for h in hits}
        assert got == {"a": [(0.0, 4.0)], "b": [(4.0, 8.0)]}


def test_another_tenant_learns_whether_a_video_matches_not_which_frames(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    """Which query frames matched (or how many) is one answer per frame: with percents of 0
    a walk of crafted frames would read a stored frame's hash in two calls. A caller that
    does not own the bank learns is_match alone, unless the bank's policy is exact."""
    banks, store = stores
    for name, policy in (("acme:bucketed", DistancePolicy.BUCKETED),
                         ("acme:exact", DistancePolicy.EXACT)):  # fmt: skip
        banks.create_bank(name, BankSettings(owner="acme", visibility=Visibility.PUBLIC,
                                             distance_policy=policy))  # fmt: skip
        store.add_video(name, videos["a"], label=name)
    loose = VideoMatchOptions(query_match_percent=0, target_match_percent=0)
    with BankMatcher.open(banks) as matcher:
        vm = VideoBankMatcher(matcher, store)

        def seen(tenant: str, bank: str) -> tuple[bool, float, int]:
            [hit] = vm.match(videos["ab"], loose, tenant, [bank], stricter_only=True)
            c = hit.comparison
            return c.is_match, c.query_match_percent, len(c.query_ranges) + len(c.target_ranges)

        assert seen("mallory", "acme:bucketed") == (True, 0.0, 0)
        assert seen("mallory", "acme:exact") == (True, 50.0, 2)
        assert seen("acme", "acme:bucketed") == (True, 50.0, 2)


def test_a_match_costing_more_frame_comparisons_than_the_bound_is_refused(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    """Charged per query frame, but each candidate costs query x stored frames: past the
    bound the call is refused (TOO_LARGE) before any comparison, not run for minutes."""
    banks, store = stores
    for name in ("a", "ab"):
        store.add_video("known", videos[name], label=name)
    with BankMatcher.open(banks) as matcher:
        query = videos["ab"]
        distinct = len(np.unique(query.hashes[query.quality >= 50], axis=0))
        stored = len(videos["a"]) + len(videos["ab"])
        loose = VideoMatchOptions(query_match_percent=0)
        assert len(VideoBankMatcher(matcher, store, distinct * stored).match(query, loose)) == 2
        with pytest.raises(TooLarge, match="max_frame_pairs"):
            VideoBankMatcher(matcher, store, distinct * stored - 1).match(query, loose)


def test_per_bank_threshold_and_removal(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    banks, store = stores
    store.add_video("strict", videos["a"], label="a")  # threshold 0: exact frames only
    with BankMatcher.open(banks) as matcher:
        vm = VideoBankMatcher(matcher, store)
        assert [h.bank for h in vm.match(videos["a"], VideoMatchOptions())] == ["strict"]
        assert vm.match(videos["a_small"], VideoMatchOptions()) == []
        assert len(vm.match(videos["a_small"], VideoMatchOptions(), max_distance=31)) == 1
        # API callers (stricter_only) can only tighten a bank's threshold, never loosen it.
        loose = vm.match(
            videos["a_small"], VideoMatchOptions(), max_distance=31, stricter_only=True
        )
        assert loose == []
    entry = store.list_videos("strict")[0]
    store.remove_video("strict", entry.id)
    assert store.list_videos("strict") == []
    assert banks.count_entries("strict").get(SignalType.PDQ, 0) == 0
    with pytest.raises(NotFound):
        store.remove_video("strict", entry.id)


def test_frame_entries_a_crashed_add_left_are_swept(
    stores: tuple[BankStore, VideoStore], videos: dict[str, VideoHash]
) -> None:
    """A crash between add_video's two transactions leaves frame entries (source vpdq)
    without a video: written here as that crash would; the sweep removes exactly those."""
    from hashmatch.banks.model import NewEntry
    from hashmatch.video.store import VPDQ_SOURCE

    banks, store = stores
    kept = store.add_video("known", videos["a"], label="clip-a")
    orphans = [bytes(h) for h in np.unique(videos["b"].hashes, axis=0)]
    banks.write_entries(
        "known", [NewEntry(SignalType.PDQ, v, label="clip-b", source=VPDQ_SOURCE) for v in orphans]
    )
    image = bytes(videos["other"].hashes[0])  # an image entry: not the sweep's business
    banks.write_entries("known", [NewEntry(SignalType.PDQ, image, label="photo")])
    before = banks.count_entries("known")[SignalType.PDQ]
    assert store.sweep_orphans("known") == 0  # too young: could be an add in progress
    assert store.sweep_orphans("known", older_than_s=0) == len(orphans)
    assert banks.count_entries("known")[SignalType.PDQ] == before - len(orphans)
    live = {e.value for e in banks.list_entries("known", limit=1000) if e.removed_at is None}
    assert image in live and not live & set(orphans)
    assert len(store.frames([kept.id])[kept.id]) == len(videos["a"])  # the video intact
    with BankMatcher.open(banks) as matcher:
        [hit] = matcher.match([HashQuery(SignalType.PDQ, (bytes(videos["a"].hashes[0]),))])
        assert hit.matches  # its frames still match
