"""Just enough H.264 bitstream reading to tell a non-reference picture, or an IDR
picture, from its packet.

A picture whose slices all have nal_ref_idc 0 is never used to predict another: when it
is not a sampled frame, the decoder need not decode it at all (what FFmpeg's
skip_frame=NONREF does, but chosen per packet, so sampled non-reference frames are kept).
An IDR picture empties the decoder's reference list: no picture after it in decoding
order refers to one before it, so decoding can start there with the same output.
"""

from __future__ import annotations

_VCL = (1, 5)  # coded slice of a non-IDR / IDR picture


def nal_length_size(extradata: bytes | None) -> int:
    """4 (usually), 2 or 1 for length-prefixed (avcC, MP4/MKV) streams; 0 for Annex B."""
    if extradata and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def _headers_avcc(data: bytes, size: int) -> list[int]:
    out = []
    pos = 0
    while pos + size < len(data):
        n = int.from_bytes(data[pos : pos + size], "big")
        out.append(data[pos + size])
        pos += size + n
    return out


def _headers_annexb(data: bytes) -> list[int]:
    out = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0 and pos + 3 < len(data):
        out.append(data[pos + 3])
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return out


def _slices(data: bytes, length_size: int) -> list[int]:
    headers = _headers_avcc(data, length_size) if length_size else _headers_annexb(data)
    return [h for h in headers if h & 0x1F in _VCL]


def is_non_reference(data: bytes, length_size: int) -> bool:
    """True only when the packet holds slices and every one has nal_ref_idc 0."""
    slices = _slices(data, length_size)
    return bool(slices) and all((h >> 5) & 3 == 0 for h in slices)


def is_idr(data: bytes, length_size: int) -> bool:
    """True only when the packet holds slices and every one is an IDR slice."""
    slices = _slices(data, length_size)
    return bool(slices) and all(h & 0x1F == 5 for h in slices)
