"""What `scan` and `scan-rematch` share: where matches come from (the local data dir's
banks, or a running server's with --server) and the options that pick them."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from hashmatch.commands.common import (
    ExitCode,
    Streams,
    add_api_key,
    add_data_dir,
    api_key_of,
    data_dir,
)
from hashmatch.matching.model import MatchOptions

if TYPE_CHECKING:
    import grpc

    from hashmatch.matching.protocol import Matcher
    from hashmatch.video.matching import VideoMatcher


def add_match_args(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    p.add_argument("--server", metavar="HOST:PORT", help="match on a running server instead")
    add_api_key(p)
    p.add_argument("--bank", action="append", default=[], help="only these banks (repeatable)")
    p.add_argument("--threshold", type=int, help="PDQ distance threshold override")


def match_options(args: argparse.Namespace) -> MatchOptions:
    return MatchOptions(banks=tuple(args.bank), max_distance=args.threshold)


@contextmanager
def matchers(args: argparse.Namespace) -> Iterator[tuple[Matcher, VideoMatcher]]:
    """Image and video matchers: the local data dir's banks, or a server's (--server)."""
    if args.server:
        import grpc

        from hashmatch.client.images import auth_metadata
        from hashmatch.client.remote_matcher import RemoteMatcher, RemoteVideoMatcher

        with grpc.insecure_channel(args.server) as channel:
            metadata = auth_metadata(api_key_of(args, Streams()))
            yield (
                RemoteMatcher(channel, metadata=metadata),
                RemoteVideoMatcher(channel, metadata=metadata),
            )
        return
    from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
    from hashmatch.video.matching import VideoBankMatcher

    data = data_dir(args)
    store = data.open_banks()
    videos = data.open_videos(store)
    try:
        with BankMatcher.open(store, MatcherConfig(data.snapshot)) as matcher:
            yield matcher, VideoBankMatcher(matcher, videos)
    finally:
        videos.close()
        store.close()


def server_error(args: argparse.Namespace, io: Streams, exc: grpc.RpcError, then: str) -> ExitCode:
    io.stderr.write(f"hashmatch: {args.server}: {exc.code().name}: {exc.details()}; {then}\n")
    return ExitCode.DEPENDENCY
