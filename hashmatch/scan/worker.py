"""What a scan's hashing workers run: a shard of source items in, its rows out (no matches).

The same code hashes in the scan's own thread (one worker), in its worker processes
(several) and in Ray tasks (--ray).
"""

from __future__ import annotations

from hashmatch.client.video import is_video_path
from hashmatch.config import EngineConfig
from hashmatch.errors import ItemError, TooLarge, Unreadable
from hashmatch.hashing.engine import Engine, Result
from hashmatch.hashing.pools import worker_engine
from hashmatch.scan.output import ScanRow
from hashmatch.scan.sources import SourceItem, read_uri
from hashmatch.video.hasher import VideoHasher

_VIDEO_HASHER = VideoHasher()


def hash_shard(engine: Engine, items: list[SourceItem]) -> list[ScanRow]:
    """The rows of one shard, hashed (no matches yet)."""
    rows = [ScanRow(it.path, it.size, it.mtime) for it in items]
    todo: list[int] = []
    payload: list[bytes | str] = []
    for k, it in enumerate(items):
        if it.error is not None:
            rows[k].error_code, rows[k].error_message = it.error.value, it.message
            continue
        if is_video_path(it.path):
            hash_video_row(rows[k])
            continue
        try:
            payload.append(_read(it, engine.config.max_bytes))
            todo.append(k)
        except Exception as exc:  # an unreadable URI is that row's error
            err = ItemError.from_exception(
                exc if not isinstance(exc, OSError) else Unreadable(str(exc))
            )
            rows[k].error_code, rows[k].error_message = err.code.value, err.message
    for k, result in zip(todo, engine.hash_many(payload), strict=True):
        fill_hashes(rows[k], result)
    return rows


def hash_shard_task(config: EngineConfig, items: list[SourceItem]) -> list[ScanRow]:
    """hash_shard in a worker process or Ray task, on that worker's engine."""
    return hash_shard(worker_engine(config), items)


def _read(item: SourceItem, max_bytes: int) -> bytes | str:
    """Local paths go to the engine as paths (read in its workers); URIs are fetched here."""
    if "://" not in item.path:
        return item.path
    data = read_uri(item.path, max_bytes)
    if len(data) > max_bytes:
        raise TooLarge(f"over the limit of {max_bytes} bytes")
    return data


def hash_video_row(row: ScanRow) -> None:
    """A video is one row: its vPDQ hash (compact), streamed from its path or URI."""
    try:
        if "://" in row.path:
            import fsspec

            with fsspec.open(row.path, "rb") as fh:  # read as decoded, never whole
                video = _VIDEO_HASHER.hash(fh)
        else:
            video = _VIDEO_HASHER.hash(row.path)
    except Exception as exc:  # one bad video is that row's error
        err = ItemError.from_exception(
            exc if not isinstance(exc, OSError) else Unreadable(str(exc))
        )
        row.error_code, row.error_message = err.code.value, err.message
        return
    row.vpdq, row.video_frames = video.to_bytes(), len(video)


def fill_hashes(row: ScanRow, result: Result) -> None:
    if isinstance(result, ItemError):
        row.error_code, row.error_message = result.code.value, result.message
        return
    row.pdq, row.quality = result.pdq.hex(), result.quality
    row.md5, row.sha256 = result.md5.hex(), result.sha256.hex()
    row.width, row.height = result.width, result.height
