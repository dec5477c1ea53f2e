"""Build torchao's CPU DA8W4 kernels from a pytorch/ao source checkout, against the installed torch.

    python benchmarks/build_torchao_cpu.py --source DIR [--isa auto|generic|avx512|avx512_vnni]
                                           [--cache DIR] [--jobs N] [--quiet]

The PyPI torchao wheels are CUDA builds: torchao/ops.py declares `torchao::da8w4_linear_cpu`
and `torchao::da8w4_linear_prepack_cpu` with Meta kernels only. This script compiles the one
upstream file that implements them (`torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp`, or the
older `torchao/csrc/cpu/da8w4_linear.cpp`) from the user's checkout into a torch C++ extension
(setuptools with torch.utils.cpp_extension.CppExtension and BuildExtension, as pytorch/ao's
setup.py does; the library is never loaded here, since an AVX512 build cannot be loaded on a
CPU without AVX512), writes the shared library and a JSON record of how it was built into the
cache folder, and prints the line that points qoracle at it:

    export QORACLE_TORCHAO_CPU_LIB=<cache>/<name>/<name>.so

The torchao adapter (kernels/torchao/ao.py) then imports torchao (which defines the op schemas)
and loads that library with torch.ops.load_library inside the worker process. Nothing of
torchao's is copied into this repository; the build reads the checkout in place.

Compile flags follow pytorch/ao setup.py (`add_options_for_x86`, USE_CPU_KERNELS=1 on Linux):
`-O3` always (plus `-g0`, which drops the `-g` that setuptools takes from Python's build flags:
no debug info, the same code, about half the compile time); where torch reports AVX512, `-DCPU_CAPABILITY_AVX512 -march=native -mfma
-fopenmp`, plus `-DCPU_CAPABILITY_AVX512_VNNI` where it reports AVX512-VNNI. `--isa`:
- auto: exactly those flags for the build host (on a host without AVX512: `-O3` only);
- generic: `-O3` only, the portable build (the kernel's scalar path, no FMA instructions);
- avx512 / avx512_vnni: the AVX512 build for another host, with explicit `-mavx512f -mavx512bw
  -mavx512dq -mavx512vl [-mavx512vnni] -mfma` in place of `-march=native` (it compiles on any
  x86-64 host; it runs only on a CPU with those extensions, which the adapter checks).
The JSON beside the library records the flags, the CPU extensions the code needs at run time,
the torch version, the source file's SHA-256 (and the checkout's git commit where it has one),
and the build's wall time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CANDIDATES = ("torchao/csrc/cpu/aten_kernels/da8w4_linear.cpp", "torchao/csrc/cpu/da8w4_linear.cpp")
AVX512 = ("avx512f", "avx512bw", "avx512dq", "avx512vl")
ISAS = ("auto", "generic", "avx512", "avx512_vnni")


def find_source(root: Path) -> Path:
    for rel in CANDIDATES:
        if (root / rel).is_file():
            return root / rel
    raise SystemExit(f"no DA8W4 CPU source under {root} (looked for {', '.join(CANDIDATES)})")


def host_isa() -> str:
    """What pytorch/ao setup.py would pick on this host (same torch queries)."""
    import torch

    cpu = torch._C._cpu
    avx512 = cpu._is_avx512_supported() if hasattr(cpu, "_is_avx512_supported") else False
    vnni = cpu._is_avx512_vnni_supported() if hasattr(cpu, "_is_avx512_vnni_supported") else False
    return ("avx512_vnni" if vnni else "avx512") if avx512 else "generic"


def flags_for(isa: str) -> tuple[list[str], list[str], list[str]]:
    """(cflags, ldflags, CPU extensions needed at run time) for an --isa value."""
    cflags, ldflags = ["-O3", "-g0"], []
    if isa == "auto":
        picked = host_isa()
        if picked == "generic":
            return cflags, ldflags, []
        cflags += ["-DCPU_CAPABILITY_AVX512", "-march=native", "-mfma", "-fopenmp"]
        needs = list(AVX512) + ["fma"]
        if picked == "avx512_vnni":
            cflags.append("-DCPU_CAPABILITY_AVX512_VNNI")
            needs.append("avx512_vnni")
        # -march=native may use any extension of the build host; record that it is host-bound
        return cflags, ["-fopenmp"], needs + ["build-host"]
    if isa == "generic":
        return cflags, ldflags, []
    cflags += ["-DCPU_CAPABILITY_AVX512", *(f"-m{x}" for x in AVX512), "-mfma", "-fopenmp"]
    needs = list(AVX512) + ["fma"]
    if isa == "avx512_vnni":
        cflags += ["-mavx512vnni", "-DCPU_CAPABILITY_AVX512_VNNI"]
        needs.append("avx512_vnni")
    return cflags, ["-fopenmp"], needs


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except OSError:
        return ""


def compiler_version() -> tuple[str, str]:
    """(first line of `$CXX --version`, 'gcc' / 'clang' / '')."""
    from torch.utils import cpp_extension

    try:
        out = subprocess.run([cpp_extension.get_cxx_compiler(), "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return "", ""
    text = out.stdout if out.returncode == 0 else ""
    family = "clang" if "clang" in text.lower() else "gcc" if "Free Software Foundation" in text else ""
    return (text.splitlines() or [""])[0], family


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, type=Path, help="root of a pytorch/ao checkout")
    ap.add_argument("--isa", choices=ISAS, default="auto")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "qoracle" / "torchao_cpu")
    ap.add_argument("--jobs", type=int, default=None, help="compile jobs (MAX_JOBS); default: torch's choice")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import torch
    from torch.utils import cpp_extension

    src = find_source(args.source.resolve())
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    isa = args.isa if args.isa != "auto" else f"auto-{host_isa()}"
    cflags, ldflags, needs = flags_for(args.isa)
    key = hashlib.sha256(json.dumps([digest, torch.__version__, cflags, ldflags]).encode()).hexdigest()[:10]
    name = f"torchao_da8w4_cpu_{isa.replace('-', '_')}_{key}"
    build_dir = args.cache.resolve() / name
    build_dir.mkdir(parents=True, exist_ok=True)
    if args.jobs:
        os.environ["MAX_JOBS"] = str(args.jobs)

    from setuptools import setup

    lib = build_dir / f"{name}.so"
    t0 = time.perf_counter()
    if not lib.is_file():
        ext = cpp_extension.CppExtension(name, [str(src)], extra_compile_args={"cxx": cflags},
                                         extra_link_args=ldflags)
        setup(name=name, ext_modules=[ext], script_name="build_torchao_cpu.py",
              cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(no_python_abi_suffix=True)},
              script_args=["build_ext", "--build-lib", str(build_dir), "--build-temp", str(build_dir / "tmp")]
              + (["--quiet"] if args.quiet else []))
    seconds = time.perf_counter() - t0
    if not lib.is_file():
        raise SystemExit(f"the build finished but {lib} is missing")
    record = {
        "library": str(lib), "isa": isa, "cflags": cflags, "ldflags": ldflags, "cpu_needs": needs,
        "source": str(src.relative_to(args.source.resolve())), "source_sha256": digest,
        "source_commit": git_commit(args.source.resolve()), "torch": torch.__version__,
        "compiler": cpp_extension.get_cxx_compiler(), "compiler_version": compiler_version()[0],
        "compiler_family": compiler_version()[1],
        "machine": platform.machine(), "build_seconds": round(seconds, 1), "jobs": os.environ.get("MAX_JOBS", ""),
        "cached": seconds < 5.0,
    }
    lib.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"built {lib} in {seconds:.1f} s ({' '.join(cflags)})", file=sys.stderr)
    print(f"export QORACLE_TORCHAO_CPU_LIB={lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
