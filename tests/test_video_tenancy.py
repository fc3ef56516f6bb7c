"""VideoService behind API keys: the match role, and each tenant's own view of the banks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.client.video import VideoClient
from hashmatch.commands.common import Streams
from tests import server_harness
from tests.tenancy_setup import admin, key, tenant
from tests.video_helpers import write_video


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[server_harness.ServerProcess, dict[str, str], Path]]:
    data = tmp_path_factory.mktemp("vtenancy")
    clips = tmp_path_factory.mktemp("vclips")
    original = write_video(clips / "original.mp4", [1, 2, 3, 4])
    query = write_video(clips / "query.mp4", [1, 2, 3, 4], size=(96, 72))
    admin(data, "bootstrap")
    tenant(data, "acme", "approve")
    tenant(data, "globex", "approve")
    keys = {
        "match": key(data, "acme", "match"),
        "bank-admin": key(data, "acme", "bank-admin"),
        "other tenant": key(data, "globex", "match"),
    }
    quiet = Streams(stdout=io.StringIO(), stderr=io.StringIO())
    assert (
        main(["bank", "create", "acme-videos", "--owner", "acme", "--data-dir", str(data)], quiet)
        == 0
    )
    add = ["video-bank", "add", "acme-videos", str(original), "--data-dir", str(data)]
    assert main(add, quiet) == 0
    srv = server_harness.start(data)
    yield srv, keys, query
    srv.stop()


def test_video_calls_need_a_match_key(
    setup: tuple[server_harness.ServerProcess, dict[str, str], Path],
) -> None:
    srv, keys, query = setup
    for api_key, code in (
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (keys["bank-admin"], grpc.StatusCode.PERMISSION_DENIED),
    ):
        with (
            VideoClient(srv.target, api_key=api_key) as client,
            pytest.raises(grpc.RpcError) as err,
        ):
            client.match_video(query)
        assert err.value.code() is code


def test_each_tenant_sees_its_own_video_banks(
    setup: tuple[server_harness.ServerProcess, dict[str, str], Path],
) -> None:
    srv, keys, query = setup
    with VideoClient(srv.target, api_key=keys["match"]) as client:
        [m] = client.match_video(query)["matches"]
        assert m["bank"] == "acme-videos"
    with VideoClient(srv.target, api_key=keys["other tenant"]) as client:
        assert client.match_video(query)["matches"] == []


def test_a_video_is_charged_per_frame(
    setup: tuple[server_harness.ServerProcess, dict[str, str], Path],
) -> None:
    """Its cost is per frame (decoded, hashed, looked up), so is its charge: an upload
    and a client's vPDQ each cost as many items as they have frames."""
    from hashmatch.video.hasher import VideoHasher

    srv, _, query = setup
    frames = len(VideoHasher().hash(query))
    assert frames > 1
    tenant(srv.data_dir, "tiny", "approve")
    admin(srv.data_dir, "tenant", "limits", "tiny", "--monthly-items", str(2 * frames))
    k = key(srv.data_dir, "tiny", "match")
    with VideoClient(srv.target, api_key=k) as client:
        video = client.hash_video(query)  # `frames` items
        assert client.match_video_hashes(video)["matches"] == []  # as many: no bank of its own
        for call in (lambda: client.match_video(query), lambda: client.hash_video(query)):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "monthly quota" in (err.value.details() or "")
