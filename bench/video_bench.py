"""Video hashing throughput (seconds of video hashed per second of wall time) against the
vPDQ reference, in the same run, on the same files.

Reference: Meta's `vpdq` (PyPI; C++ over FFmpeg's libraries), run in a child process of
the Python that has it installed (--vpdq-python; it needs FFmpeg's -dev packages to build,
so it lives in a throwaway venv). Without it, the peer is what vpdq does, in-process:
FFmpeg (PyAV) RGB24 frames + pdqhash per sampled frame ("ffmpeg+pdqhash").

One core: every measured process is pinned to CPU 0 (sched_setaffinity), decode threads 1.
All cores: no pinning; hashmatch decodes H.264 IDR-to-IDR segments on one decoder per
core, vpdq with its own defaults (thread_count 0: FFmpeg's threads).

    python -m bench.video_bench --vpdq-python /tmp/vpdq-venv/bin/python
    python -m bench.video_bench --vpdq-python /tmp/vpdq-venv/bin/python --long-gop
    python -m bench.video_bench --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from bench.timing import median_seconds
from hashmatch.config import VideoConfig
from hashmatch.hashing.signature import hamming
from hashmatch.video.decode import iter_segments
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}

_CHILD = r"""
import json, os, sys, time
path, sph, threads, pin = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
if pin:
    os.sched_setaffinity(0, {0})
import vpdq
times = []
for _ in range(int(sys.argv[5])):
    t = time.perf_counter()
    feats = vpdq.computeHash(path, seconds_per_hash=sph, thread_count=threads)
    times.append(time.perf_counter() - t)
times.sort()
best = times[len(times) // 2]  # the median (odd counts)
rows = [[f.frame_number, f.quality, f.hex, f.timestamp] for f in feats]
print(json.dumps({"seconds": best, "rows": rows}))
"""


def make_clip(
    path: Path, width: int, height: int, seconds: int, fps: int = 30, long_gop: bool = False
) -> Path:
    """A panning view over smooth random textures, a new texture every 2 s (x264, yuv420p).
    x264 puts an IDR picture at each new texture (scene cut), so every 2 s; long_gop: no
    scene cuts, one IDR picture every 250 frames (x264's default keyint, 8.3 s)."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if long_gop:
            stream.options = {"x264-params": "scenecut=0"}
        for k in range(0, seconds, 2):
            small = rng.integers(0, 256, (24, 48, 3)).astype(np.uint8)
            tex = np.repeat(np.repeat(small, height // 24 + 1, 0), (2 * width) // 48 + 1, 1)
            tex = tex[:height, : 2 * width]
            # cheap smoothing: a few box passes along x
            texf = tex.astype(np.float32)
            for _ in range(3):
                texf = (np.roll(texf, 7, 1) + texf + np.roll(texf, -7, 1)) / 3
            tex = texf.astype(np.uint8)
            for n in range(min(2, seconds - k) * fps):
                x = (n * 8) % width
                frame = np.ascontiguousarray(tex[:, x : x + width])
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def idr_every(path: Path) -> float:
    """Mean seconds between IDR pictures (where the segmented decoder can split)."""
    config = VideoConfig()
    segments = list(iter_segments(path, config))
    return duration(path) / len(segments)


def duration(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.frames / s.average_rate)


def run_ours(path: Path, sph: float, one_core: bool, runs: int) -> tuple[float, VideoHash]:
    """Pinned in a child process when one_core (affinity is per process)."""
    if one_core:
        code = (
            "import os, sys, time, json; os.sched_setaffinity(0, {0});"
            "from pathlib import Path;"
            "from hashmatch.config import VideoConfig;"
            "from hashmatch.video.hasher import VideoHasher;"
            f"h = VideoHasher(VideoConfig(seconds_per_hash={sph}, decode_threads=1));"
            f"h.hash(Path({str(path)!r}));"  # warm-up: Numba's compile cache
            "times = []\n"
            f"for _ in range({runs}):\n"
            "    t = time.perf_counter()\n"
            f"    v = h.hash(Path({str(path)!r}))\n"
            "    dt = time.perf_counter() - t\n"
            "    times.append(dt)\n"
            "times.sort()\n"
            "print(json.dumps({'seconds': times[len(times) // 2], 'text': v.to_text()}))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        return float(got["seconds"]), VideoHash.from_text(got["text"])
    hasher = VideoHasher(VideoConfig(seconds_per_hash=sph, decode_threads=0))
    video = hasher.hash(path)
    return median_seconds(lambda: hasher.hash(path), runs), video


def run_vpdq(
    python: str, path: Path, sph: float, one_core: bool, runs: int
) -> tuple[float, VideoHash]:
    args = [python, "-c", _CHILD, str(path), str(sph), "1" if one_core else "0"]
    args += ["1" if one_core else "0", str(runs)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    rows = [(int(f), float(t), bytes.fromhex(h), int(q)) for f, q, h, t in got["rows"]]
    return float(got["seconds"]), VideoHash.from_rows(rows)


def run_peer_inprocess(path: Path, sph: float, runs: int) -> tuple[float, VideoHash]:
    """What vpdq does, without vpdq: every frame decoded, sampled ones to RGB24 + pdqhash."""
    import pdqhash

    times = []
    video = VideoHash.empty()
    for _ in range(runs):
        t = time.perf_counter()
        rows = []
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_count = 1
            fps = float(s.average_rate)
            mod = max(1, int(sph * fps))
            for n, frame in enumerate(c.decode(s)):
                if n % mod == 0:
                    bits, q = pdqhash.compute(frame.to_ndarray(format="rgb24"))
                    h = np.packbits(bits.astype(np.uint8)).tobytes()
                    rows.append((n, n / fps, h, int(q)))
        times.append(time.perf_counter() - t)
        video = VideoHash.from_rows(rows)
    return statistics.median(times), video


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vpdq-python", help="a Python with `vpdq` installed (the reference)")
    p.add_argument("--seconds", type=int, default=20, help="clip length")
    p.add_argument("--runs", type=int, default=3, help="median of N (both sides)")
    p.add_argument("--quick", action="store_true", help="720p only, 4 s, 1 run")
    p.add_argument("--size", choices=sorted(SIZES), action="append", help="only these sizes")
    p.add_argument(
        "--long-gop", action="store_true", help="no scene-cut IDRs: one every 250 frames"
    )
    args = p.parse_args()
    sizes = {k: SIZES[k] for k in args.size} if args.size else SIZES
    if args.quick:
        sizes = {"720p": SIZES["720p"]}
    seconds, runs = (4, 1) if args.quick else (args.seconds, args.runs)
    peer_name = "vpdq 0.2.5" if args.vpdq_python else "ffmpeg(PyAV)+pdqhash"
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PyAV {av.__version__}; peer: {peer_name}"
    )
    print(
        "| video | IDR every | seconds_per_hash | cores | hashmatch s/s | peer s/s | ratio | "
        "frames equal | max bits (q>=50) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h) in sizes.items():
            clip = make_clip(Path(tmp) / f"{name}.mp4", w, h, seconds, long_gop=args.long_gop)
            length, gop = duration(clip), idr_every(clip)
            for sph in (1.0, 0.0):
                for one_core in (True, False):
                    ours_s, ours = run_ours(clip, sph, one_core, runs)
                    if args.vpdq_python:
                        peer_s, peer = run_vpdq(args.vpdq_python, clip, sph, one_core, runs)
                    elif one_core:
                        peer_s, peer = run_peer_inprocess(clip, sph, runs)
                    else:
                        continue  # the in-process peer is single-threaded
                    same = ours.frame_numbers.tolist() == peer.frame_numbers.tolist()
                    worst = -1
                    if same:
                        both = (ours.quality >= 50) & (peer.quality >= 50)
                        d = hamming(ours.hashes, peer.hashes)
                        worst = int(d[both].max()) if both.any() else 0
                    print(
                        f"| {name} {length:.0f} s | {gop:.1f} s | {sph:g} | "
                        f"{'1' if one_core else 'all'} | "
                        f"{length / ours_s:.1f} | {length / peer_s:.1f} | "
                        f"{peer_s / ours_s:.2f}x | {same} | {worst} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
