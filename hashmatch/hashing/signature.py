"""Signature value types. Hashes are packed bytes inside; hex only at the edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.kernels.constants import DIHEDRAL_NAMES, PDQ_BYTES, PDQ_HEX_LEN

__all__ = ["DIHEDRAL_NAMES", "PDQ_BYTES", "PdqHash", "Signature", "hamming"]


@dataclass(frozen=True, slots=True)
class PdqHash:
    """One 256-bit PDQ hash. Bytes are the big-endian form of the reference's hex."""

    value: bytes

    def __post_init__(self) -> None:
        if len(self.value) != PDQ_BYTES:
            raise BadParameter(f"a PDQ hash is {PDQ_BYTES} bytes, got {len(self.value)}")

    @classmethod
    def from_hex(cls, text: str) -> PdqHash:
        text = text.strip()
        if len(text) != PDQ_HEX_LEN:
            raise BadParameter(f"a PDQ hash is {PDQ_HEX_LEN} hex digits, got {len(text)}")
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise BadParameter("a PDQ hash must be hexadecimal") from None

    def hex(self) -> str:
        return self.value.hex()

    def __sub__(self, other: PdqHash) -> int:
        """Hamming distance."""
        return (int.from_bytes(self.value, "big") ^ int.from_bytes(other.value, "big")).bit_count()

    def __str__(self) -> str:
        return self.hex()


@dataclass(frozen=True, slots=True)
class Signature:
    """Everything the engine computes for one image."""

    pdq: PdqHash
    quality: int
    md5: bytes
    sha256: bytes
    width: int
    height: int
    # The 8 dihedral PDQ hashes (original first) when asked for.
    dihedral: tuple[PdqHash, ...] | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "pdq": self.pdq.hex(),
            "quality": self.quality,
            "md5": self.md5.hex(),
            "sha256": self.sha256.hex(),
            "width": self.width,
            "height": self.height,
        }
        if self.dihedral is not None:
            out["dihedral"] = [h.hex() for h in self.dihedral]
        return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise distances between packed hash batches uint8[..., 32] (broadcasting)."""
    out: np.ndarray = np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(axis=-1, dtype=np.int64)
    return out
