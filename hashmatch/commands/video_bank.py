"""`hashmatch video-bank add|list|remove`: vpdq entries of a bank (operator, local data)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.commands.video_options import add_video_options, load, video_hasher
from hashmatch.config import VideoConfig
from hashmatch.errors import HashmatchError

if TYPE_CHECKING:
    from hashmatch.banks.store import BankStore
    from hashmatch.video.store import VideoStore


def register(vb: argparse.ArgumentParser) -> None:
    actions = vb.add_subparsers(dest="action", required=True)

    p = actions.add_parser("add", help="hash videos (or read vPDQ .txt files) into a bank")
    add_data_dir(p)
    p.add_argument("bank")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--label", help="label of every video added (default: the file name)")
    p.add_argument(
        "--index-quality",
        type=int,
        default=VideoConfig.min_quality,
        help="frames of at least this quality go into the PDQ index",
    )
    add_video_options(p)
    p.set_defaults(run=_add)

    p = actions.add_parser("list", help="a bank's video entries, one JSON line each")
    add_data_dir(p)
    p.add_argument("bank")
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(run=_list)

    p = actions.add_parser("remove", help="remove a video entry (and the frames only it had)")
    add_data_dir(p)
    p.add_argument("bank")
    p.add_argument("video_id", type=int)
    p.set_defaults(run=_remove)


def _open(args: argparse.Namespace) -> tuple[BankStore, VideoStore]:
    data = data_dir(args)
    store = data.open_banks()
    return store, data.open_videos(store)


def _add(args: argparse.Namespace, io: Streams) -> ExitCode:
    hasher = video_hasher(args)
    store, videos = _open(args)
    failed = False
    try:
        videos.sweep_orphans(args.bank)  # what an earlier, killed add left behind
        for path in args.files:
            try:
                video = load(path, hasher)
                entry = videos.add_video(
                    args.bank,
                    video,
                    label=args.label or path.name,
                    external_id=str(path),
                    index_quality=args.index_quality,
                )
            except HashmatchError as exc:
                failed = True
                err = {"code": exc.code.value, "message": exc.message}
                io.json_line({"path": str(path), "error": err})
                continue
            io.json_line({"path": str(path), **entry.to_json()})
    finally:
        videos.close()
        store.close()
    return ExitCode.FAILURE if failed else ExitCode.OK


def _list(args: argparse.Namespace, io: Streams) -> ExitCode:
    store, videos = _open(args)
    try:
        for entry in videos.list_videos(args.bank, args.after, args.limit):
            io.json_line(entry.to_json())
    finally:
        videos.close()
        store.close()
    return ExitCode.OK


def _remove(args: argparse.Namespace, io: Streams) -> ExitCode:
    store, videos = _open(args)
    try:
        videos.remove_video(args.bank, args.video_id)
    finally:
        videos.close()
        store.close()
    io.json_line({"removed": args.video_id})
    return ExitCode.OK
