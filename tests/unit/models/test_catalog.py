"""Embedded model files: joining chunks from installed packages, verifying, clear errors."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from purpose_agent.errors import ModelFileError
from purpose_agent.models import catalog
from purpose_agent.models.catalog import EmbeddedModel, ensure_model_file


def _fake_packages(root: Path, prefix: str, chunks: list[bytes]) -> tuple[str, ...]:
    mods = []
    for i, data in enumerate(chunks, 1):
        pkg = root / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        mods.append(pkg.name)
    return tuple(mods)


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedModel:
    site = tmp_path / "site"
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 500]
    mods = _fake_packages(site, "fake_model_part", chunks)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    model = EmbeddedModel(
        "fake-1b", "fake.gguf", len(whole), hashlib.sha256(whole).hexdigest(), chunk_packages=mods
    )
    monkeypatch.setitem(catalog.EMBEDDED, "fake-1b", model)
    monkeypatch.setenv("PURPOSE_AGENT_CACHE", str(tmp_path / "cache"))
    for m in mods:
        sys.modules.pop(m, None)
    return model


def test_joins_in_order_verifies_and_caches(fake_model: EmbeddedModel, tmp_path: Path) -> None:
    path = ensure_model_file("fake-1b")
    assert path == tmp_path / "cache" / "models" / "fake.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256
    stamp = path.with_name("fake.gguf.verified.json")
    assert stamp.is_file()
    mtime = path.stat().st_mtime_ns
    assert ensure_model_file("fake-1b") == path and path.stat().st_mtime_ns == mtime  # cached, not rejoined


def test_missing_package_names_the_fix(fake_model: EmbeddedModel, tmp_path: Path) -> None:
    import shutil

    shutil.rmtree(tmp_path / "site" / "fake_model_part2")
    sys.modules.pop("fake_model_part2", None)
    with pytest.raises(
        ModelFileError, match=r"fake-model-part2.*is missing. Fix: pip install 'purpose-agent\[local\]'"
    ):
        ensure_model_file("fake-1b")


def test_corrupt_chunk_is_refused_and_nothing_half_written(fake_model: EmbeddedModel, tmp_path: Path) -> None:
    part = tmp_path / "site" / "fake_model_part3" / "data" / "part03.bin"
    part.write_bytes(b"X" * 500)  # same size, wrong bytes
    with pytest.raises(ModelFileError, match=r"corrupt.*sha256.*Fix: reinstall"):
        ensure_model_file("fake-1b")
    models_dir = tmp_path / "cache" / "models"
    assert not list(models_dir.glob("*.partial")) and not (models_dir / "fake.gguf").exists()


def test_truncated_chunk_is_refused(fake_model: EmbeddedModel, tmp_path: Path) -> None:
    (tmp_path / "site" / "fake_model_part1" / "data" / "part01.bin").write_bytes(b"GGUF")
    with pytest.raises(ModelFileError, match=r"chunks add up to"):
        ensure_model_file("fake-1b")


def test_cached_file_corrupted_later_is_detected_and_rebuilt(fake_model: EmbeddedModel) -> None:
    path = ensure_model_file("fake-1b")
    with path.open("r+b") as f:
        f.seek(10)
        f.write(b"Z")
    # the stamp no longer matches the mtime -> re-hash -> mismatch -> rejoin from the packages
    assert hashlib.sha256(ensure_model_file("fake-1b").read_bytes()).hexdigest() == fake_model.sha256


def test_unknown_embedded_name() -> None:
    with pytest.raises(ModelFileError, match=r"embedded models: qwen2.5-coder-1.5b"):
        catalog.lookup("gpt-5-local")


def test_local_backend_missing_file_names_the_fix(tmp_path: Path) -> None:
    from purpose_agent.models.local import LocalBackend

    with pytest.raises(ModelFileError, match=r"does not exist. Fix"):
        LocalBackend(model_path=tmp_path / "nope.gguf")


def test_local_backend_corrupt_gguf_gives_clear_error(tmp_path: Path) -> None:
    from purpose_agent.models.base import Message
    from purpose_agent.models.local import LocalBackend

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all" * 100)
    backend = LocalBackend(model_path=bad)
    with pytest.raises(ModelFileError, match=r"could not load.*Fix"):
        backend.complete([Message("user", "hi")])
