"""A VideoHash as the VideoService's messages carry it (client, server and remote matcher)."""

from __future__ import annotations

from hashmatch.proto import video_pb
from hashmatch.video.features import VideoHash


def features_to_proto(h: VideoHash) -> list[video_pb.VideoFeature]:
    return [
        video_pb.VideoFeature(frame_number=f, timestamp=t, pdq=p, quality=q)
        for f, t, p, q in h.rows()
    ]
