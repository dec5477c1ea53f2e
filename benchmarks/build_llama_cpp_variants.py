"""Install llama-cpp-python with one ggml CPU library per x86 ISA, so `--isa` can cap ggml.

    python benchmarks/build_llama_cpp_variants.py --target DIR [--version 0.3.36] [--jobs 2]
    python benchmarks/build_llama_cpp_variants.py --venv VENV  [...]
    python benchmarks/build_llama_cpp_variants.py --check DIR      # what an existing build holds

The default install (`pip install llama-cpp-python`, the `ggml` extra) builds ONE
`libggml-cpu.so` with `-march=native`: ggml has no runtime ISA knob, so `--isa scalar` cannot
cap it (the suite says so, UNAVAILABLE). This script pip-installs the registry's sdist with

    CMAKE_ARGS="-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"

which makes ggml build `libggml-cpu-<variant>.so` for every x86 variant its CMake lists
(ggml/src/CMakeLists.txt: x64, sse42, sandybridge, ivybridge, piledriver, haswell, skylakex,
cannonlake, cascadelake, icelake, cooperlake, zen4, alderlake, sapphirerapids in ggml 0.25).
kernels/ggml/libggml.py then loads the one QORACLE_GGML_CPU_VARIANT names (kernels/isa.py: x64
at scalar, haswell at avx2, skylakex, icelake, sapphirerapids above).

Nothing but pip's index is reached: pip downloads the sdist and its build requirements
(scikit-build-core, cmake, ninja) from the configured index, or builds a given `--sdist` file.
`--no-cache-dir` is passed because pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS:
a cached one-ISA wheel would otherwise be installed silently. CMAKE_BUILD_PARALLEL_LEVEL is
`--jobs`. LLAVA_BUILD=OFF skips libmtmd, which qoracle does not use (`--with-mtmd` keeps it).

llama-cpp-python's CMakeLists installs the targets it names (ggml-cpu, not ggml-cpu-<variant>),
so the variant modules land where ggml's own install rule puts them, `<site>/bin/`; the script
moves them into `<site>/llama_cpp/lib/` beside libggml-base.so (where the adapter and
`ggml_backend_load_all_from_path` look) and rewrites their lines in the wheel's RECORD, so
`pip uninstall` still removes them. It writes `<site>/qoracle-ggml-variants.json` (versions,
CMake arguments, wall time, variants, which ones this CPU supports by ggml_backend_score) and
prints how to point qoracle at the build.

Only the ggml adapter is served: in a GGML_BACKEND_DL build libllama finds its CPU backend through
`llama_backend_init` -> `ggml_backend_load_all()`, which searches the Python executable's folder
and the working directory (GGML_BACKEND_DIR unset), not llama_cpp/lib: after `llama_backend_init()`
this build has 0 backends registered (measured), so llama-cpp-python's Llama class cannot run a
model with it; keep it out of the environment that runs llama models.

Measured on the 2-core AMD EPYC (AVX2, FMA, F16C), shared, `nice -n 10`, --jobs 2: 35 min 16 s
wall for llama-cpp-python 0.3.36 (387 build steps, 14 variants; haswell, piledriver, ivybridge,
sandybridge, sse42 and x64 have a nonzero score here).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

CMAKE_ARGS = ("-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON", "-DGGML_NATIVE=OFF")
NO_MTMD = "-DLLAVA_BUILD=OFF"
RECORD_NAME = "qoracle-ggml-variants.json"


def default_version() -> str:
    """The llama-cpp-python version installed beside this script's Python, else 0.3.36 (the
    version whose headers kernels/ggml/libggml.py declares)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "0.3.36"


def site_dir(target: Path | None, venv: Path | None) -> tuple[list[str], Path]:
    """(the pip command prefix, the folder that will hold llama_cpp/) for --target or --venv."""
    if target is not None:
        target = target.resolve()
        return [sys.executable, "-m", "pip", "install", "--target", str(target)], target
    py = (venv / "bin" / "python").resolve()
    if not py.exists():
        raise SystemExit(f"{venv} has no bin/python")
    plat = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    return [str(py), "-m", "pip", "install", "--force-reinstall"], Path(plat)


def relocate(site: Path) -> list[str]:
    """Move variant modules installed outside llama_cpp/lib into it, fixing RECORD; their names."""
    lib = site / "llama_cpp" / "lib"
    moved: dict[str, str] = {}
    for f in sorted(site.rglob("libggml-cpu-*.so*")):
        if f.parent == lib:
            continue
        dest = lib / f.name
        if dest.exists():
            dest.unlink()
        shutil.move(str(f), dest)
        moved[f.relative_to(site).as_posix()] = dest.relative_to(site).as_posix()
    for record in site.glob("llama_cpp_python-*.dist-info/RECORD"):
        lines = record.read_text().splitlines()
        record.write_text("\n".join(_moved_line(line, moved) for line in lines) + "\n")
    for d in {(site / old).parent for old in moved}:
        if d != site and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    return sorted(Path(p).name for p in moved.values())


def _moved_line(line: str, moved: dict[str, str]) -> str:
    path, _, rest = line.partition(",")
    return f"{moved[path]},{rest}" if path in moved else line


def variants(lib: Path) -> dict[str, int]:
    """Each variant in `lib` with ggml_backend_score() on this CPU (0: this CPU lacks its ISA).

    libggml-base is loaded first: the variant modules find it by soname (they carry no RPATH).
    The score function is compiled without the variant's ISA flags (ggml-cpu's cpu-feats), so
    asking a variant above this CPU is safe, as in ggml's own loader.
    """
    ctypes.CDLL(str(lib / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    out = {}
    for f in sorted(lib.glob("libggml-cpu-*.so")):
        score = getattr(ctypes.CDLL(str(f)), "ggml_backend_score", None)
        out[f.name.removeprefix("libggml-cpu-").removesuffix(".so")] = int(score()) if score else 0
    return out


def check(site: Path) -> dict:
    """What a build holds, for `--check` and for the record written after a build."""
    lib = site / "llama_cpp" / "lib"
    if not (lib / "libggml-base.so").exists():
        raise SystemExit(f"no llama_cpp/lib/libggml-base.so under {site}")
    # a fresh process: a variant above this CPU must not share this one's address space longer than needed
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from build_llama_cpp_variants import variants; print(json.dumps(variants(__import__('pathlib').Path({str(lib)!r}))))")
    got = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    return {"lib_dir": str(lib), "variants": got, "supported_here": [v for v, s in got.items() if s > 0],
            "one_isa_cpu_lib": (lib / "libggml-cpu.so").exists()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", type=Path, help="pip install --target DIR (use it with PYTHONPATH=DIR)")
    where.add_argument("--venv", type=Path, help="install into this virtual environment (replaces its llama-cpp-python)")
    where.add_argument("--check", type=Path, metavar="DIR", help="only report the variants under DIR (a --target or site-packages)")
    ap.add_argument("--version", default=None, help="llama-cpp-python version (default: the installed one, else 0.3.36)")
    ap.add_argument("--sdist", type=Path, help="build this sdist file instead of downloading it from the index")
    ap.add_argument("--jobs", type=int, default=2, help="CMAKE_BUILD_PARALLEL_LEVEL (default 2)")
    ap.add_argument("--with-mtmd", action="store_true", help="also build libmtmd (llava); qoracle does not use it")
    ap.add_argument("--cmake-arg", action="append", default=[], help="one more CMake argument (repeatable)")
    a = ap.parse_args(argv)

    if a.check is not None:
        print(json.dumps(check(a.check.resolve()), indent=1))
        return 0
    version = a.version or default_version()
    cmake = [*CMAKE_ARGS, *([] if a.with_mtmd else [NO_MTMD]), *a.cmake_arg]
    pip, site = site_dir(a.target, a.venv)
    what = str(a.sdist.resolve()) if a.sdist else f"llama-cpp-python=={version}"
    cmd = [*pip, "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python", "--verbose", what]
    env = {**os.environ, "CMAKE_ARGS": " ".join(cmake), "CMAKE_BUILD_PARALLEL_LEVEL": str(a.jobs)}
    env.pop("SOURCE_DATE_EPOCH", None)  # irrelevant with GGML_NATIVE=OFF; kept out so the record is the whole story
    print(f"CMAKE_ARGS={env['CMAKE_ARGS']!r} CMAKE_BUILD_PARALLEL_LEVEL={a.jobs}\n$ {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    subprocess.run(cmd, env=env, check=True)
    wall = time.monotonic() - t0
    moved = relocate(site)
    record = {"llama_cpp_python": version, "source": what, "cmake_args": cmake, "jobs": a.jobs,
              "wall_s": round(wall, 1), "host": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "moved_into_lib": moved, **check(site)}
    (site / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    hint = f"PYTHONPATH={site}" if a.target else f"the venv {a.venv}"
    print(f"\nuse it: {hint} (or LLAMA_CPP_LIB_PATH={site / 'llama_cpp' / 'lib'}); "
          f"QORACLE_GGML_LIB_DIR={site / 'llama_cpp' / 'lib'} enables tests/test_ggml_variants.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
