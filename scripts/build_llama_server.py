#!/usr/bin/env python3
"""Build llama.cpp's own ``llama-server`` (and ``llama-bench``, ``llama-batched-bench``) offline
from the llama.cpp tree vendored in the pinned llama-cpp-python sdist, and install the binaries
next to the venv's python (where ``purpose_agent.models.llama_server`` looks first).

Used by ``make install`` (target ``$(VENV)/.stamp-llama-server``); run it by hand as

    python scripts/build_llama_server.py --prefix .venv

Network is used only by ``pip download`` (PyPI, for the sdist); the cmake build itself fetches
nothing: no prebuilt web UI, no curl, no OpenSSL. The host's own CPU extensions stay on (turning
them off halves prompt speed), but never Intel AMX (``scripts/ggml_cpu.py`` says why). A second
run reuses the sdist, the extracted tree and the build directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ggml_cpu import host_options

VERSION = "0.3.36"
TARGETS = ("llama-server", "llama-bench", "llama-batched-bench")
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def fetch_sdist(work: Path, version: str) -> Path:
    sdist = work / f"llama_cpp_python-{version}.tar.gz"
    if sdist.is_file():
        return sdist
    work.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"llama-cpp-python=={version}", "-d", str(work),
        ]
    )  # fmt: skip
    if not sdist.is_file():
        raise SystemExit(f"pip download did not produce {sdist}")
    return sdist


def extract(sdist: Path, work: Path, version: str) -> Path:
    src = work / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if (src / "CMakeLists.txt").is_file():
        return src
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    if not (src / "CMakeLists.txt").is_file():
        raise SystemExit(f"{sdist} holds no vendor/llama.cpp tree")
    return src


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", default=".venv", help="install into PREFIX/bin (default: .venv)")
    ap.add_argument("--work", default="build/llama.cpp", help="sdist, sources and build directory")
    ap.add_argument("--version", default=VERSION, help=f"llama-cpp-python sdist version ({VERSION})")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    args = ap.parse_args(argv)

    if shutil.which("cmake") is None:
        raise SystemExit("cmake is missing. Fix: apt-get install cmake (or pip install cmake)")
    work = Path(args.work).resolve()
    src = extract(fetch_sdist(work, args.version), work, args.version)
    build = work / "build"
    run(["cmake", "-S", str(src), "-B", str(build), *CMAKE_FLAGS, *host_options()])
    run(["cmake", "--build", str(build), "--target", *args.targets, f"-j{args.jobs}"])

    bindir = Path(args.prefix).resolve() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for target in args.targets:
        built = build / "bin" / target
        if not built.is_file():
            raise SystemExit(f"the build did not produce {built}")
        dest = bindir / target
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copy2(built, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)  # atomic: a running server keeps its old inode
        print(f"installed {dest}")
    if "llama-server" in args.targets:
        run([str(bindir / "llama-server"), "--version"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
