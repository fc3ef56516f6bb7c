"""Bulk scans: row-for-row output, bad files, SIGKILL + resume exactly once, re-match."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.scan.sources import SourceItem
from hashmatch.scan.worker import hash_shard
from hashmatch.storage.datadir import DataDir
from tests.helpers import descendants, encode, oracle, pillow_rgb, still_running, synthetic_rgb

N_IMAGES = 1200


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small images in nested folders, with bad files and odd names planted among them."""
    root = tmp_path_factory.mktemp("tree")
    base = [synthetic_rgb(48, 64, seed=s) for s in range(40)]
    rng = np.random.default_rng(0)
    for k in range(N_IMAGES):
        folder = root / f"d{k % 7}" / f"e{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        img = np.roll(base[k % 40], k // 40, axis=1)
        if k % 2:
            (folder / f"img{k:05d}.jpg").write_bytes(
                encode(img, "JPEG", quality=int(rng.integers(70, 95)))
            )
        else:
            (folder / f"img{k:05d}.png").write_bytes(encode(img, "PNG"))
    (root / "d0" / "empty.jpg").write_bytes(b"")
    (root / "d1" / "notes.txt").write_text("not an image")
    (root / "d2" / "truncated.jpg").write_bytes(encode(base[0], "JPEG")[:300])
    (root / "d3" / "broken-link.jpg").symlink_to(root / "nowhere.jpg")
    (root / "d4" / "loop").symlink_to(root)
    (root / "d5" / "odd ñame #1 ✓ (copy).png").write_bytes(encode(base[1], "PNG"))
    return root


def _scan(*args: str) -> dict[str, object]:
    out = io.StringIO()
    assert main(["scan", *args, "--backend", "cpu"], Streams(stdout=out, stderr=io.StringIO())) == 0
    return json.loads(out.getvalue().splitlines()[-1])  # type: ignore[no-any-return]


def _bank(data: Path, values: list[str]) -> None:
    store = DataDir(data).open_banks()
    store.create_bank("planted", BankSettings())
    store.write_entries(
        "planted", [NewEntry(SignalType.PDQ, bytes.fromhex(v), "A1") for v in values]
    )
    store.close()


def test_scan_rows_match_the_engine_row_for_row(tree: Path, tmp_path: Path) -> None:
    engine = Engine(EngineConfig(backend=BackendChoice.CPU))
    planted_files = sorted(tree.rglob("img0000*.png"))[:3]
    planted = [r.pdq.hex() for r in engine.hash_many(planted_files) if isinstance(r, Signature)]
    _bank(tmp_path / "data", planted)
    summary = _scan(
        str(tree),
        "--out",
        str(tmp_path / "out"),
        "--data-dir",
        str(tmp_path / "data"),
        "--workers",
        "2",
        "--shard-size",
        "100",
    )
    df = pd.read_parquet(tmp_path / "out")
    assert len(df) == N_IMAGES + 5  # every input once; the loop is not followed
    assert df["path"].is_unique
    errors = dict(zip(df["path"].map(lambda p: Path(p).name), df["error_code"], strict=True))
    assert errors["empty.jpg"] == "NOT_AN_IMAGE" and errors["notes.txt"] == "NOT_AN_IMAGE"
    assert errors["truncated.jpg"] == "CORRUPT_IMAGE" and errors["broken-link.jpg"] == "UNREADABLE"
    assert pd.isna(errors["odd ñame #1 ✓ (copy).png"])
    good = df[df["error_code"].isna()]
    sample = good.sample(60, random_state=1)
    for row, want in zip(sample.itertuples(), engine.hash_many(list(sample["path"])), strict=True):
        assert isinstance(want, Signature)
        assert (row.pdq, row.quality, row.md5, row.sha256) == (
            want.pdq.hex(),
            want.quality,
            want.md5.hex(),
            want.sha256.hex(),
        )
        assert row.size == os.path.getsize(row.path)
    # Planted matches: every image whose PDQ is within 31 bits of a planted hash, no other.
    bits = {v: int(v, 16) for v in planted}
    expect = good["pdq"].map(
        lambda h: min((int(h, 16) ^ b).bit_count() for b in bits.values()) <= 31
    )
    assert (good["is_match"] == expect).all()
    assert expect.sum() >= 3
    assert summary["summary"]["matched"] == int(expect.sum())  # type: ignore[index]
    assert summary["summary"]["errors"] == {"NOT_AN_IMAGE": 2, "CORRUPT_IMAGE": 1, "UNREADABLE": 1}  # type: ignore[index]


def test_scan_with_a_library_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--decoder reaches the scan's engine: the JPEGs go to nvImageCodec, and hash as the
    reference (Pillow's RGB + pdqhash) and the CPU path do, bit for bit."""
    pytest.importorskip("nvidia.nvimgcodec")
    from hashmatch.hashing.decode.nvimagecodec import NvImageCodecDecoder

    decoded: list[int] = []
    decode_many = NvImageCodecDecoder.decode_many

    def counted(self: NvImageCodecDecoder, blobs: list[bytes]) -> list[object]:
        decoded.append(len(blobs))
        return decode_many(self, blobs)  # type: ignore[return-value]

    monkeypatch.setattr(NvImageCodecDecoder, "decode_many", counted)
    src = tmp_path / "jpegs"
    src.mkdir()
    for k in range(6):
        (src / f"{k}.jpg").write_bytes(encode(synthetic_rgb(70 + k, 90, seed=k), "JPEG"))
    _scan(str(src), "--out", str(tmp_path / "out"), "--hash-only", "--decoder", "nvimagecodec")
    assert sum(decoded) == 6
    df = pd.read_parquet(tmp_path / "out").sort_values("path")
    want = [oracle(pillow_rgb(Path(p).read_bytes())) for p in df["path"]]
    assert list(zip(df["pdq"], df["quality"], strict=True)) == [(h.hex(), q) for h, q in want]
    cpu_path = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many(list(df["path"]))
    assert [(r.pdq.hex(), r.quality) for r in cpu_path if isinstance(r, Signature)] == [
        (h.hex(), q) for h, q in want
    ]


def test_vanished_file_is_a_row_error() -> None:
    engine = Engine(EngineConfig(backend=BackendChoice.CPU))
    rows = hash_shard(engine, [SourceItem("/nonexistent/gone.jpg", 10, 0.0)])
    assert rows[0].error_code == "UNREADABLE"


def test_listing_and_file_uri_sources(tree: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in (tree / "d6").rglob("*.png"))[:20]
    listing = tmp_path / "paths.txt"
    listing.write_text("\n".join([*files, str(tree / "missing.png")]) + "\n")
    _scan(str(listing), "--out", str(tmp_path / "a"), "--hash-only")
    a = pd.read_parquet(tmp_path / "a")
    assert list(a["path"]) == [*files, str(tree / "missing.png")]
    assert a["error_code"].iloc[-1] == "UNREADABLE"
    _scan(f"file://{tree / 'd6'}", "--out", str(tmp_path / "b"), "--hash-only")
    b = pd.read_parquet(tmp_path / "b")
    by_name = dict(zip(b["path"].map(lambda p: Path(p).name), b["pdq"], strict=True))
    assert all(
        by_name[Path(f).name] == pdq for f, pdq in zip(a["path"][:-1], a["pdq"][:-1], strict=True)
    )


@pytest.mark.parametrize(("seed", "workers"), [(1, 1), (2, 2), (3, 2)])
def test_sigkill_then_resume_is_exactly_once(
    tree: Path, tmp_path: Path, seed: int, workers: int
) -> None:
    ref = tmp_path / "ref"
    _scan(str(tree), "--out", str(ref), "--hash-only", "--shard-size", "50")
    want = pd.read_parquet(ref).sort_values("path").reset_index(drop=True)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hashmatch", "scan", str(tree), "--out", str(out), "--hash-only",
           "--shard-size", "50", "--backend", "cpu", "--workers", str(workers)]  # fmt: skip
    rng = random.Random(seed)
    total_shards = -(-len(want) // 50)
    manifest = out / "_manifest.json"

    def shards_done() -> int:
        try:
            return len(json.loads(manifest.read_text())["shards"])
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    interrupted = 0
    orphans: set[int] = set()
    for _attempt in range(3):  # a scan that outran every kill (a loaded machine) starts over
        shutil.rmtree(out, ignore_errors=True)
        for _ in range(2):  # killed twice at seeded random points mid-scan, then to the end
            done = shards_done()
            if done >= total_shards - 4:  # the first kill landed near the end: one is enough
                break
            target = rng.randint(done + 1, total_shards - 4)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while shards_done() < target and proc.poll() is None:
                time.sleep(rng.uniform(0.001, 0.02))
            helpers = descendants(proc.pid)  # worker processes and their fork server
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            orphans |= still_running(helpers, within_s=10.0)
            interrupted += shards_done() < total_shards
        if interrupted:
            break
    assert interrupted, "no kill landed mid-scan"
    assert not orphans, "the killed scan's worker processes outlived it"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = pd.read_parquet(out).sort_values("path").reset_index(drop=True)
    assert not any(p.name.startswith(".") for p in out.iterdir() if p.suffix == ".parquet")
    pd.testing.assert_frame_equal(got, want)


def test_rematch_and_diff_without_rehashing(tree: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    _scan(str(tree / "d3"), "--out", str(old), "--hash-only")
    rows = pd.read_parquet(old)
    target = rows[rows["error_code"].isna()].iloc[0]
    data = tmp_path / "data"
    _bank(data, [target["pdq"]])
    out = io.StringIO()
    assert (
        main(
            [
                "scan-rematch",
                str(old),
                "--out",
                str(tmp_path / "new.parquet"),
                "--data-dir",
                str(data),
            ],
            Streams(stdout=out),
        )
        == 0
    )
    new = pd.read_parquet(tmp_path / "new.parquet")
    assert new["is_match"].sum() >= 1
    assert list(new["pdq"].fillna("")) == list(rows["pdq"].fillna(""))
    diff = io.StringIO()
    assert main(["scan-diff", str(old), str(tmp_path / "new.parquet")], Streams(stdout=diff)) == 0
    lines = [json.loads(line) for line in diff.getvalue().splitlines()]
    assert target["path"] in {line["path"] for line in lines}
    assert len(lines) == int(new["is_match"].sum())


def test_resume_refuses_other_parameters(tree: Path, tmp_path: Path) -> None:
    _scan(str(tree / "d2"), "--out", str(tmp_path / "o"), "--hash-only")
    err = io.StringIO()
    code = main(
        [
            "scan",
            str(tree / "d2"),
            "--out",
            str(tmp_path / "o"),
            "--hash-only",
            "--shard-size",
            "7",
        ],
        Streams(stderr=err),
    )
    assert code == 2 and "other parameters" in err.getvalue()


def test_ray_scan_equals_local_scan(tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is in the test extras; installed by CI")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _scan(
            str(tree / "d1"), "--out", str(tmp_path / "local"), "--hash-only", "--shard-size", "20"
        )
        _scan(
            str(tree / "d1"),
            "--out",
            str(tmp_path / "ray"),
            "--hash-only",
            "--shard-size",
            "20",
            "--ray",
        )
    finally:
        ray.shutdown()
    local = pd.read_parquet(tmp_path / "local").sort_values("path").reset_index(drop=True)
    remote = pd.read_parquet(tmp_path / "ray").sort_values("path").reset_index(drop=True)
    assert len(local) > 100
    pd.testing.assert_frame_equal(remote, local)
    assert sorted(p.name for p in (tmp_path / "ray").glob("part-*")) == sorted(
        p.name for p in (tmp_path / "local").glob("part-*")
    )
