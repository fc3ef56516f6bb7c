"""Video decode through NVIDIA DALI (`fn.experimental.inputs.video`): NVDEC on a GPU (the
"mixed" backend, device 0), or DALI's own FFmpeg on the CPU (device_id=None: how the tests
run it; that build decodes VP8, VP9 and MJPEG, not H.264 or HEVC).

DALI decodes every frame (no skipping), in order, and converts it to RGB; frames are
numbered, sampled and timed by the reference's rule (decode.py), with fps, frame_mod and
the size checks from PyAV's probe, so the rules live in one place. Output is RGB uint8
[H, W, 3], the reference's RGB24 path (y_range (0, 1)).

Memory: DALI decodes from a buffer, so the encoded video is in memory: a path is mapped
(pages come in as DALI reads them, no copy on the CPU backend; the GPU backend copies the
file into its own host buffer), a file object is read whole. Videos over
`VideoConfig.dali_max_bytes` are left to PyAV. Decoded frames stream in runs of at most
`_RUN_BYTES`; only the first frame of each sequence leaves DALI (on the GPU, only those are
copied to the host).

Anything DALI cannot do or fails at raises SkipUnsafe, and the hasher decodes the video
with PyAV, which gives the typed error or the answer. The container probe's own typed
errors (NotAVideo, SizeOutOfRange, Unreadable) are PyAV's and pass through as they are.
Not checked: a frame size that changes mid-stream (DALI keeps the first one).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from hashmatch.config import DecoderChoice, VideoConfig
from hashmatch.errors import ConfigError
from hashmatch.hashing.backend import cuda_usable
from hashmatch.hashing.decode.dali import dali_installed, sync_pipeline
from hashmatch.video.decode import (
    Frame,
    SkipUnsafe,
    Source,
    StreamInfo,
    open_container,
    stream_info,
)

log = logging.getLogger(__name__)

# Decoded frames one pipeline run may hold (sequences x frames x H x W x 3 bytes).
_RUN_BYTES = 256 * 1024 * 1024
# Sequences a run (DALI's batch size): at most one sampled frame each.
_MAX_BATCH = 64
# How DALI's input operator says the video it was fed has no frames left.
_DEPLETED = "No data was provided to the InputOperator"


@dataclass(frozen=True, slots=True)
class Plan:
    """How one video goes through DALI: sequences of `sequence` frames (a divisor of
    frame_mod, so every sampled frame starts one), `batch` sequences a run."""

    info: StreamInfo
    packets: int  # the video's frames: DALI numbers them by packet, checked at the end
    sequence: int
    batch: int


def select_video_decoder(config: VideoConfig) -> DaliVideoDecoder | None:
    """The DALI decoder where `config.decoder` asks for it (chosen once per hasher).

    auto: only with a usable CUDA device (NVDEC); on the CPU, PyAV's skipping paths are
    much faster than DALI decoding every frame. dali: always, on the CPU without a GPU.
    """
    if config.decoder is DecoderChoice.CPU:
        return None
    if not dali_installed():
        if config.decoder is DecoderChoice.DALI:
            raise ConfigError("video decoder 'dali' asked for, but nvidia-dali is not installed")
        return None
    gpu = cuda_usable()
    if config.decoder is DecoderChoice.AUTO and not gpu:
        return None
    return DaliVideoDecoder(device_id=0 if gpu else None)


class DaliVideoDecoder:
    """Sampled frames of one video at a time; a pipeline per video (DALI's input operator
    ends a video with an error that leaves its pipeline unusable)."""

    def __init__(self, device_id: int | None = None, threads: int = 2) -> None:
        self.device_id = device_id
        self.threads = threads

    @property
    def device(self) -> str:
        return "cpu" if self.device_id is None else f"gpu:{self.device_id}"

    def frames(self, source: Source, config: VideoConfig) -> Iterator[Frame]:
        """The sampled frames, as `iter_frames` gives them (RGB). Raises SkipUnsafe where
        PyAV must decode instead, and the probe's typed errors."""
        data = _load(source, config.dali_max_bytes)  # first: a large file is not read
        if not isinstance(source, (str, os.PathLike)):
            source.seek(0)
        plan = _plan(source, config)
        pipe = self._pipeline(plan)
        try:
            yield from self._run(pipe, data, plan)
        finally:
            del pipe  # before `data`, which the CPU pipeline reads in place

    def _pipeline(self, plan: Plan) -> Any:
        try:
            return self._build(plan)
        except Exception as exc:
            log.info("DALI video pipeline not built (%s): decoding with PyAV", _reason(exc))
            raise SkipUnsafe("no DALI pipeline") from None

    def _build(self, plan: Plan) -> Any:
        # Imported as an untyped module: DALI's own annotations are partial.
        fn: Any = importlib.import_module("nvidia.dali.fn")
        cpu = self.device_id is None

        def graph() -> Any:
            sequences = fn.experimental.inputs.video(
                name="video",
                sequence_length=plan.sequence,
                device="cpu" if cpu else "mixed",
                last_sequence_policy="partial",
                no_copy=cpu,  # the mapped file, read in place
            )
            return fn.element_extract(sequences, element_map=[0])

        # Each run returns the next sequences of the video fed.
        return sync_pipeline(graph, plan.batch, self.threads, self.device_id)

    def _run(self, pipe: Any, data: np.ndarray, plan: Plan) -> Iterator[Frame]:
        info = plan.info
        pipe.feed_input("video", [data])
        started = 0  # sequences so far; sequence q starts at frame q * plan.sequence
        while (batch := self._next(pipe)) is not None:
            for k in range(len(batch)):
                number = started * plan.sequence
                started += 1
                if number % info.frame_mod:
                    continue
                pixels = np.array(batch.at(k))  # a copy: DALI reuses its buffers
                if pixels.shape != (info.height, info.width, 3):
                    raise SkipUnsafe("a frame of another size")
                yield Frame(number, number / info.fps, pixels, (0.0, 1.0))
        if started != math.ceil(plan.packets / plan.sequence):
            raise SkipUnsafe("DALI's frames and the packets do not pair up")

    def _next(self, pipe: Any) -> Any | None:
        """The next run's first frames (on the host), or None once the video is done."""
        try:
            (batch,) = pipe.run()
        except Exception as exc:
            if _DEPLETED in str(exc):
                return None
            log.info("DALI could not decode a video (%s): decoding with PyAV", _reason(exc))
            raise SkipUnsafe("DALI failed") from None
        return batch if self.device_id is None else batch.as_cpu()


def _plan(source: Source, config: VideoConfig) -> Plan:
    """Stream info from PyAV's probe (its typed errors), and the packet count: DALI sizes
    its output by the container's frame count (else by counting packets), so the two
    must agree before it runs."""
    container = open_container(source)
    try:
        videos = container.streams.video
        if len(videos) != 1:
            raise SkipUnsafe("not exactly one video stream")  # DALI may pick another
        info = stream_info(videos[0], config)
        declared = int(videos[0].frames or 0)
        try:
            packets = sum(1 for p in container.demux(videos[0]) if p.size)
        except av.FFmpegError:
            raise SkipUnsafe("demuxing failed") from None
    finally:
        container.close()
    if not packets or declared not in (0, packets):
        raise SkipUnsafe("the frame count is unclear")
    return _sizes(info, packets)


def _sizes(info: StreamInfo, packets: int) -> Plan:
    """The longest sequence dividing frame_mod within _RUN_BYTES (sampled frames then
    start sequences), and as many sequences a run as fit."""
    frame = info.width * info.height * 3
    fit = max(1, _RUN_BYTES // frame)
    sequence = max(d for d in range(1, min(info.frame_mod, fit) + 1) if info.frame_mod % d == 0)
    return Plan(info, packets, sequence, max(1, min(_MAX_BATCH, fit // sequence)))


def _load(source: Source, limit: int) -> np.ndarray:
    """The encoded video as uint8: a path mapped, a file object read whole."""
    if isinstance(source, (str, os.PathLike)):
        try:
            if os.path.getsize(source) > limit:
                raise SkipUnsafe("over dali_max_bytes")
            return np.memmap(source, np.uint8, mode="r")
        except (OSError, ValueError):
            raise SkipUnsafe("cannot map the file") from None
    size = source.seek(0, os.SEEK_END)  # seekable: the hasher rewinds it for PyAV anyway
    source.seek(0)
    if size > limit:
        raise SkipUnsafe("over dali_max_bytes")
    return np.frombuffer(source.read(), np.uint8)


def _reason(exc: Exception) -> str:
    """DALI's own message: the line before its "C++ context" (the first lines say where)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for before, line in itertools.pairwise(lines):
        if line.startswith("C++ context"):
            return before
    return lines[0] if lines else type(exc).__name__
