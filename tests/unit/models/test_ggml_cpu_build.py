"""The llama.cpp builds' CPU options: the host's extensions, never Intel AMX (scripts/ggml_cpu.py).

The last test reads the wheel the Makefile installed: a build with AMX compiled in segfaults at its
first decode on a VM that lists AMX without granting its tile state (seen here and in CI).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "ggml_cpu.py"
_spec = importlib.util.spec_from_file_location("ggml_cpu", SCRIPT)
assert _spec is not None and _spec.loader is not None
ggml_cpu = importlib.util.module_from_spec(_spec)
sys.modules["ggml_cpu"] = ggml_cpu
_spec.loader.exec_module(ggml_cpu)

SAPPHIRE = (
    "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx_vnni avx512f avx512cd avx512vl "
    "avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n"
    "processor\t: 1\nflags\t\t: fpu\n"
)


def test_amx_listed_by_the_cpu_is_still_switched_off() -> None:
    options = ggml_cpu.cmake_options(SAPPHIRE, "x86_64")
    assert "-DGGML_NATIVE=OFF" in options
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(options)
    assert "-DGGML_AVX512=ON" in options and "-DGGML_AVX512_VNNI=ON" in options
    assert not any("AMX" in o and o.endswith("=ON") for o in options)


def test_an_extension_the_cpu_lacks_is_off() -> None:
    avx2_only = "flags\t: sse4_2 avx avx2 fma f16c bmi2 avx512f\n"  # AVX-512 needs all five parts
    options = ggml_cpu.cmake_options(avx2_only, "x86_64")
    assert "-DGGML_AVX2=ON" in options
    assert "-DGGML_AVX512=OFF" in options and "-DGGML_AVX_VNNI=OFF" in options


def test_other_architectures_keep_native_detection() -> None:
    assert ggml_cpu.cmake_options(None, "aarch64") == ["-DGGML_NATIVE=ON"]
    assert ggml_cpu.cmake_options(SAPPHIRE, "aarch64") == ["-DGGML_NATIVE=ON"]


def test_system_info_with_amx_is_recognised() -> None:
    assert ggml_cpu.amx_compiled("CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |")
    assert not ggml_cpu.amx_compiled("CPU : AVX2 = 1 | AVX512 = 1 | REPACK = 1 |")


def test_the_installed_wheel_has_no_amx_kernel() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    info = llama_cpp.llama_print_system_info().decode()
    assert not ggml_cpu.amx_compiled(info), info
