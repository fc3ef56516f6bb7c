"""What a JPEG can cost to decode, read from its bytes before any decoder runs.

Every scan a decoder reads starts with the byte pair FF DA, and entropy-coded data cannot
hold one (an FF there is followed by 00 or a restart marker), so counting the pairs bounds
the scans from above whatever the markers claim: no parser here has to agree with
libjpeg's on segment lengths, restarts or frame types. Each scan is a pass over the image
(progressive, or sequential with components in separate scans): 100,000 tiny scans after
a 1400x1400 image (1.8 MB) take 20 s to decode. libjpeg's progressive script writes 10.
"""

from __future__ import annotations

import numpy as np

_CHUNK = 8 << 20  # bytes compared at once: bounded temporaries for a 64 MB upload
_SOS, _SOF_SEQUENTIAL = 0xDA, (0xC0, 0xC1)  # baseline, extended sequential (Huffman)
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length


def scan_markers(data: bytes) -> int:
    """FF DA pairs anywhere in the file: at least as many as the scans decoded."""
    a = np.frombuffer(data, np.uint8)
    count = 0
    for start in range(0, max(a.size - 1, 0), _CHUNK):
        part = a[start : start + _CHUNK + 1]
        count += int(np.count_nonzero((part[:-1] == 0xFF) & (part[1:] == _SOS)))
    return count


def plain_header(data: bytes, max_segments: int = 32) -> tuple[int, int] | None:
    """(width, height) of a sequential Huffman JPEG whose header is a clean chain of at
    most max_segments segments from SOI to its scan, with no junk or fill bytes (so any
    header reader, Pillow's included, takes that many steps); None for anything else."""
    pos, size, end = 2, None, len(data)
    for _ in range(max_segments):
        if pos + 4 > end or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in _STANDALONE or marker in (0x00, 0xFF, 0xD8, 0xD9):
            return None
        if marker == _SOS:
            return size
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame
            if marker not in _SOF_SEQUENTIAL or size is not None or pos + 9 > end:
                return None
            size = (int.from_bytes(data[pos + 7 : pos + 9], "big"),
                    int.from_bytes(data[pos + 5 : pos + 7], "big"))  # fmt: skip
        pos += 2 + length
    return None
