"""A JPEG's coding and scan count, read from its markers without decoding a block.

A progressive JPEG may hold any number of scans and libjpeg-turbo makes a pass over every
block for each one: 100,000 tiny scans appended to a 1400x1400 image (1.8 MB) take 20 s to
decode, and a 64 MB upload could hold a worker for minutes. libjpeg's standard progressive
script has 10 scans (6 for grey), so a limit far above that refuses only such files.
Sequential JPEGs are decoded in one pass whatever their markers say and are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Start-of-frame markers; the others in 0xC0-0xCF are DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOF_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_SOS, _EOI, _TEM = 0xDA, 0xD9, 0x01
# A marker after entropy-coded data: 0xFF not followed by a stuffed 0x00 or a restart.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")


@dataclass(frozen=True, slots=True)
class JpegCoding:
    progressive: bool
    scans: int  # counted for progressive files only, up to the limit asked for + 1


def jpeg_coding(data: bytes, count_up_to: int) -> JpegCoding:
    """Walks the markers as libjpeg reads them (segments skipped by their length, bytes
    that are not a marker skipped to the next one, entropy-coded data to its end marker)
    up to the first EOI; stops counting once the count passes count_up_to."""
    pos, end = 2, len(data)
    progressive, scans = False, 0
    while pos + 1 < end:
        if data[pos] != 0xFF:  # junk between segments: libjpeg skips to the next marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            break
        if marker == _TEM or 0xD0 <= marker <= 0xD7 or marker == 0x00:
            pos += 2
            continue
        if pos + 4 > end:
            break
        segment_end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF:
            progressive = marker in _SOF_PROGRESSIVE
            if not progressive:
                return JpegCoding(False, 0)
        if marker == _SOS:
            if not progressive:  # a scan before any frame: the decoder refuses it
                return JpegCoding(False, 0)
            scans += 1
            if scans > count_up_to:
                break
            found = _NEXT_MARKER.search(data, segment_end)
            if found is None:
                break
            pos = found.start()
        else:
            pos = segment_end
    return JpegCoding(progressive, scans)
