"""Meta's published PDQ test images and expected hashes (../shared/reference-data/pdq)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hashmatch.config import EngineConfig, HashMode
from hashmatch.hashing.backend import CpuBackend
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import PdqHash, Signature
from tests.helpers import oracle_dihedral, pillow_rgb, reference_dir


def _rows(name: str) -> list[dict[str, str]]:
    with (reference_dir("pdq") / name).open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _hash_all(mode: HashMode, files: list[str], dihedral: bool = False) -> list[Signature]:
    root = reference_dir("pdq")
    config = EngineConfig(mode=mode, backend="cpu", dihedral=dihedral)  # type: ignore[arg-type]
    results = Engine(config).hash_many([root / f for f in files])
    for f, r in zip(files, results, strict=True):
        assert isinstance(r, Signature), (f, r)
    return results  # type: ignore[return-value]


def test_exact_mode_against_pillow_pdqhash() -> None:
    """Every image bit-exact with equal quality, JPEG and the near-flat ones included."""
    rows = _rows("reference-pillow-pdqhash.tsv")
    sigs = _hash_all(HashMode.EXACT, [r["file"] for r in rows])
    for row, sig in zip(rows, sigs, strict=True):
        assert sig.pdq.hex() == row["hash"], row["file"]
        assert sig.quality == int(row["quality"]), row["file"]
        assert (sig.width, sig.height) == (int(row["width"]), int(row["height"]))
    assert sum(Path(r["file"]).suffix.lower() in (".jpg", ".jpeg") for r in rows) == 38


def test_luma_mode_against_pillow_pdqhash() -> None:
    """The Y-plane mode: what it costs on Meta's JPEGs (the README's figures)."""
    rows = [
        r
        for r in _rows("reference-pillow-pdqhash.tsv")
        if Path(r["file"]).suffix.lower() in (".jpg", ".jpeg") and int(r["quality"]) >= 10
    ]
    sigs = _hash_all(HashMode.LUMA, [r["file"] for r in rows])
    dists = [sig.pdq - PdqHash.from_hex(row["hash"]) for row, sig in zip(rows, sigs, strict=True)]
    assert len(dists) == 35
    assert 0 < np.mean(dists) <= 1.0, dists
    assert max(dists) <= 8, dists


def test_cpp_mode_is_bit_exact_with_meta_cpp_hasher() -> None:
    rows = _rows("reference-cpp-pdq-photo-hasher.tsv")
    assert len(rows) == 42
    sigs = _hash_all(HashMode.CPP, [r["file"] for r in rows])
    for row, sig in zip(rows, sigs, strict=True):
        assert sig.pdq.hex() == row["hash"], row["file"]
        assert sig.quality == int(row["quality"]), row["file"]


def test_python_threatexchange_expectations() -> None:
    """The repository's own pytx (Pillow + pdqhash) values, untransformed rows."""
    rows = [
        r
        for r in _rows("expected.tsv")
        if r["producer"] == "pytx-pdqhash-pillow" and r["transform"] == "none"
    ]
    assert len(rows) == 20
    sigs = _hash_all(HashMode.EXACT, [r["file"] for r in rows])
    for row, sig in zip(rows, sigs, strict=True):
        assert sig.pdq == PdqHash.from_hex(row["hash"]), row["file"]
        if row["quality"]:
            assert sig.quality == int(row["quality"])


def test_dihedral_equals_reference_dihedral() -> None:
    """All 8 variants bit for bit with pdqhash.compute_dihedral on the same luma.

    Near-flat images (quality < 10) are excluded: there the 128th and 129th DCT values
    lie within float rounding of each other and implementations disagree on a bit or two.
    """
    rows = [r for r in _rows("reference-pillow-pdqhash.tsv") if int(r["quality"]) >= 10]
    files = [r["file"] for r in rows if not r["file"].endswith((".jpg", ".jpeg"))]
    # JPEGs through the RGB path so both sides see the same luma.
    files += [r["file"] for r in rows if r["file"].endswith((".jpg", ".jpeg"))][:12]
    root = reference_dir("pdq")
    backend = CpuBackend()
    for f in files:
        rgb = pillow_rgb((root / f).read_bytes())
        hashes, quality = backend.finish([backend.prepare(rgb)], dihedral=True)
        want, want_quality = oracle_dihedral(rgb)
        assert [bytes(h) for h in hashes[0]] == want, f
        assert int(quality[0]) == want_quality


def test_dihedral_first_variant_is_the_hash() -> None:
    root = reference_dir("pdq")
    f = "reg-test-input/dih/bridge-1-original.jpg"
    plain = Engine(EngineConfig(backend="cpu")).hash_one(root / f)  # type: ignore[arg-type]
    both = Engine(EngineConfig(backend="cpu", dihedral=True)).hash_one(root / f)  # type: ignore[arg-type]
    assert isinstance(plain, Signature) and isinstance(both, Signature)
    assert both.dihedral is not None and len(both.dihedral) == 8
    assert both.dihedral[0] == plain.pdq == both.pdq
    # Not the hashes of the rotated pixels, but close on a photograph (design notes: 0-8).
    rotated = _hash_all(HashMode.EXACT, ["reg-test-input/dih/bridge-2-rotate-90.jpg"])[0]
    assert min(rotated.pdq - v for v in both.dihedral) <= 16


@pytest.mark.parametrize("mode", [HashMode.EXACT, HashMode.CPP, HashMode.FAST])
def test_every_reference_image_hashes_in_every_mode(mode: HashMode) -> None:
    rows = _rows("reference-pillow-pdqhash.tsv")
    sigs = _hash_all(mode, [r["file"] for r in rows])
    assert len(sigs) == len(rows)
    # The fast mode is not reference-exact, but stays a usable near-duplicate signal
    # on good-quality photos (its figures are in bench/RESULTS.md).
    for row, sig in zip(rows, sigs, strict=True):
        if mode is HashMode.FAST and int(row["quality"]) >= 80:
            assert sig.pdq - PdqHash.from_hex(row["hash"]) <= 48, row["file"]
