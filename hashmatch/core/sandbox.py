"""The integration sandbox: benign synthetic images, and a public "Test" bank of them.

PhotoDNA Cloud gives its customers "a database of benign images" that hit a `Test`
source, so they can wire up their match handling without real abuse material. hashmatch
draws its own: shapes, gradients and text, made by code (deterministic: the same images
on every run of the same Pillow), hashed by our engine at the server's first start into a
public bank named "Test" whose entries say source "Test". `hashmatch sandbox export DIR`
writes the images, so a client can send them and see the hits; a request with the `test`
option matches against this bank only.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hashmatch.banks.model import BankSettings, NewEntry, SignalType, Visibility
from hashmatch.banks.store import BankStore
from hashmatch.config import EngineConfig
from hashmatch.errors import AlreadyExists, BadParameter, InternalError, NotFound
from hashmatch.hashing.signature import Signature
from hashmatch.matching.model import SANDBOX_BANK

log = logging.getLogger(__name__)

SOURCE = "Test"
LISTED = 8  # images in the Test bank
UNLISTED = 4  # images that match nothing (for the other branch of a client's handling)
SIZE = (320, 240)


@dataclass(frozen=True)
class SampleImage:
    name: str
    png: bytes
    listed: bool


def _draw(k: int) -> bytes:
    rng = random.Random(7919 * (k + 1))
    w, h = SIZE
    # A two-colour gradient at a random angle.
    a, b = (np.array([rng.randrange(256) for _ in range(3)], dtype=np.float64) for _ in "ab")
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (x * np.cos(angle) + y * np.sin(angle)) / (w + h)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    pixels = (a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]).astype(
        np.uint8
    )
    img = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(4, 9)):
        x0, y0 = rng.randrange(w - 40), rng.randrange(h - 40)
        x1, y1 = x0 + rng.randrange(20, w // 2), y0 + rng.randrange(20, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
    font = ImageFont.load_default()
    draw.text((10, h - 24), f"hashmatch sandbox #{k}", fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False)
    return buf.getvalue()


def sample_images() -> list[SampleImage]:
    """The listed images, then the unlisted ones; the same bytes on every call."""
    out = [SampleImage(f"test-hit-{k:02d}.png", _draw(k), True) for k in range(LISTED)]
    out += [SampleImage(f"test-miss-{k:02d}.png", _draw(100 + k), False) for k in range(UNLISTED)]
    return out


def _entries(engine_config: EngineConfig) -> list[NewEntry]:
    from hashmatch.hashing.engine import Engine  # `sandbox export` needs no kernels

    listed = [s for s in sample_images() if s.listed]
    with Engine(engine_config) as engine:
        results = engine.hash_many([s.png for s in listed])
    entries = []
    for s, r in zip(listed, results, strict=True):
        if not isinstance(r, Signature):
            raise InternalError(f"sandbox image {s.name} did not hash: {r.message}")
        label = s.name.removesuffix(".png")
        for st, value in ((SignalType.PDQ, r.pdq.value), (SignalType.MD5, r.md5)):
            entries.append(NewEntry(st, value, label, label, SOURCE))
        entries.append(NewEntry(SignalType.SHA256, r.sha256, label, label, SOURCE))
    return entries


def ensure_sandbox(store: BankStore, engine_config: EngineConfig) -> bool:
    """Creates the public Test bank when there is none; True when it was created."""
    try:
        store.get_bank(SANDBOX_BANK)
        return False
    except NotFound:
        pass
    entries = _entries(engine_config)
    try:
        store.create_bank(
            SANDBOX_BANK, BankSettings(owner="", visibility=Visibility.PUBLIC, enabled=True)
        )
    except AlreadyExists:  # replicas starting at once on a new database: one makes it
        return False
    store.write_entries(SANDBOX_BANK, entries)
    log.info("sandbox: created the public %r bank (%d images)", SANDBOX_BANK, LISTED)
    return True


def export(folder: Path) -> list[dict[str, object]]:
    """Writes the sample images and a manifest.json saying which ones hit "Test"."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for s in sample_images():
        _write_new(folder / s.name, s.png)
        manifest.append({"file": s.name, "expect_match": s.listed, "source": SOURCE})
    _write_new(folder / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def _write_new(path: Path, data: bytes) -> None:
    """Written without following a symlink there (it would overwrite its target, a file
    of the user's or the system's): a link or other non-file in the way is an error."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise BadParameter(f"{path}: not written ({exc.strerror}; a symlink there?)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
