"""hashmatch's exact hashes against python-threatexchange's (what HMA stores), by format.

python-threatexchange (1.2.17, its newest release) hashes `np.asarray(Image.open(...))`:
a palette image's indices, a CMYK JPEG's channels, as if they were RGB (its newer
sources add a force_rgb option, off by default). hashmatch
converts every image to RGB first, as Pillow's convert("RGB") (and pdqhash's own
examples) do. This prints the distance per format, both ways, so an operator importing
a list hashed by HMA knows what to expect.

    python -m bench.te_compat --te-python /tmp/te-venv/bin/python
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import PdqHash, Signature

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg"]


def _photos() -> list[Image.Image]:
    data = Path(skimage.__file__).parent / "data"
    out = []
    for name in PHOTOS:
        with Image.open(data / name) as img:
            out.append(img.convert("RGB").resize((640, 480), Image.Resampling.LANCZOS))
    return out


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def samples() -> dict[str, list[bytes]]:
    """Each kind of file, from the same photographs."""
    kinds: dict[str, list[bytes]] = defaultdict(list)
    for rgb in _photos():
        kinds["JPEG (YCbCr)"].append(_save(rgb, "JPEG", quality=90))
        kinds["JPEG (CMYK)"].append(_save(rgb.convert("CMYK"), "JPEG", quality=90))
        kinds["GIF"].append(_save(rgb, "GIF"))
        kinds["PNG (palette)"].append(_save(rgb.quantize(256), "PNG"))
        kinds["PNG (RGBA)"].append(_save(rgb.convert("RGBA"), "PNG"))
        kinds["PNG (grey)"].append(_save(rgb.convert("L"), "PNG"))
    # Meta's one photo saved in each of Pillow's modes.
    modes = Path(os.environ.get("HASHMATCH_REFERENCE_DATA", "../shared/reference-data"))
    for path in sorted((modes / "pdq" / "misc-images" / "modes").glob("*.*")):
        if path.suffix.lower() in (".png", ".jpg", ".gif", ".tiff", ".tif", ".webp", ".bmp"):
            kinds[f"Meta's modes/{path.name}"].append(path.read_bytes())
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--te-python", required=True, help="a Python with threatexchange")
    args = parser.parse_args()
    kinds = samples()
    engine = Engine(EngineConfig(backend=BackendChoice.CPU))
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, list[Path]] = {}
        for kind, blobs in kinds.items():
            paths[kind] = []
            for k, blob in enumerate(blobs):
                p = Path(tmp) / f"{len(paths)}_{k}"
                p.write_bytes(blob)
                paths[kind].append(p)
        runner = str(Path(__file__).with_name("te_pdq_runner.py"))
        every = [str(p) for ps in paths.values() for p in ps]
        out = subprocess.run(
            [args.te_python, runner, *every], capture_output=True, text=True, check=True
        ).stdout
        theirs = {row["path"]: row for row in map(json.loads, out.splitlines())}
        print("| file | files | python-threatexchange's hash: bits from ours, mean (min-max) |")
        print("|---|---|---|")
        for kind, ps in paths.items():
            dists = []
            for p, sig in zip(ps, engine.hash_many(ps), strict=True):
                assert isinstance(sig, Signature), (kind, sig)
                value, _quality = theirs[str(p)]["pdq"]
                dists.append(sig.pdq - PdqHash.from_hex(value))
            print(f"| {kind} | {len(ps)} | {np.mean(dists):.1f} ({min(dists)}-{max(dists)}) |")
    engine.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
