"""The batch engine: order, checksums, paths, pools, backend selection."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from hashmatch.config import BackendChoice, EngineConfig, PoolKind
from hashmatch.errors import BadParameter, ConfigError, ErrorCode, ItemError
from hashmatch.hashing.backend import CpuBackend, GpuBackend, select_backend
from hashmatch.hashing.engine import Engine, hash_many
from hashmatch.hashing.signature import PdqHash, Signature
from tests.helpers import encode, synthetic_rgb


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    out = []
    for k in range(6):
        rgb = synthetic_rgb(90 + 17 * k, 130 + 11 * k, seed=k)
        out.append(encode(rgb, "JPEG" if k % 2 else "PNG"))
    return out


def _pdq(results: list[Signature | ItemError]) -> list[str | ErrorCode]:
    return [r.pdq.hex() if isinstance(r, Signature) else r.code for r in results]


def test_results_in_order_with_checksums(images: list[bytes]) -> None:
    results = hash_many(images, EngineConfig(backend=BackendChoice.CPU))
    assert len(results) == len(images)
    for data, result in zip(images, results, strict=True):
        assert isinstance(result, Signature)
        assert result.md5 == hashlib.md5(data).digest()
        assert result.sha256 == hashlib.sha256(data).digest()
    assert len({r.pdq for r in results if isinstance(r, Signature)}) == len(images)


def test_paths_and_bytes_agree(tmp_path: Path, images: list[bytes]) -> None:
    paths = []
    for k, data in enumerate(images):
        p = tmp_path / f"img{k}"
        p.write_bytes(data)
        paths.append(p)
    engine = Engine(EngineConfig(backend=BackendChoice.CPU))
    assert _pdq(engine.hash_many(paths)) == _pdq(engine.hash_many(images))
    assert _pdq(engine.hash_many([str(p) for p in paths])) == _pdq(engine.hash_many(images))


def test_unreadable_paths(tmp_path: Path) -> None:
    results = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many(
        [tmp_path / "missing.jpg", tmp_path]
    )
    assert [r.code for r in results if isinstance(r, ItemError)] == [
        ErrorCode.UNREADABLE,
        ErrorCode.UNREADABLE,
    ]


@pytest.mark.parametrize("pool", [PoolKind.THREAD, PoolKind.PROCESS])
def test_pools_give_the_same_results(images: list[bytes], pool: PoolKind) -> None:
    batch = [*images, b"junk", *images]
    serial = _pdq(Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many(batch))
    with Engine(EngineConfig(backend=BackendChoice.CPU, workers=2, pool=pool)) as engine:
        assert _pdq(engine.hash_many(batch)) == serial
        assert _pdq(engine.hash_many(batch[:3])) == serial[:3]


def test_dihedral_results(images: list[bytes]) -> None:
    results = hash_many(images[:2], EngineConfig(backend=BackendChoice.CPU, dihedral=True))
    for r in results:
        assert isinstance(r, Signature) and r.dihedral is not None
        assert r.dihedral[0] == r.pdq
        assert len(set(r.dihedral)) == 8


def test_empty_batch() -> None:
    assert hash_many([], EngineConfig(backend=BackendChoice.CPU)) == []
    assert hash_many([b""], EngineConfig(backend=BackendChoice.CPU, dihedral=True))[0] == ItemError(
        ErrorCode.NOT_AN_IMAGE, "empty input"
    )


def test_backend_chosen_once_and_cpu_without_cuda() -> None:
    assert isinstance(select_backend(EngineConfig(backend=BackendChoice.CPU)), CpuBackend)
    # This machine (and CI) has no CUDA device: auto falls back, gpu refuses clearly.
    assert isinstance(select_backend(EngineConfig(backend=BackendChoice.AUTO)), CpuBackend)
    with pytest.raises(ConfigError):
        select_backend(EngineConfig(backend=BackendChoice.GPU))


def test_gpu_backend_refuses_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """CuPy's TF32 switch would round the DCT's matmuls to 10 mantissa bits."""
    oom = type("OutOfMemoryError", (MemoryError,), {})
    cupy_like = SimpleNamespace(cuda=SimpleNamespace(memory=SimpleNamespace(OutOfMemoryError=oom)))
    assert GpuBackend(cupy_like).name == "gpu"  # float32 as it is: fine
    monkeypatch.setenv("CUPY_TF32", "1")
    with pytest.raises(ConfigError, match="CUPY_TF32"):
        GpuBackend(cupy_like)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        EngineConfig(workers=0)
    with pytest.raises(ConfigError):
        EngineConfig(max_pixels=0)


def test_pdq_hash_value_type() -> None:
    a = PdqHash.from_hex("f" * 64)
    b = PdqHash.from_hex("0f" + "f" * 62)
    assert a - b == 4
    assert a.hex() == "f" * 64
    for bad in ("xyz", "z" * 64):
        with pytest.raises(BadParameter):
            PdqHash.from_hex(bad)
