"""ggml's ISA cap: QORACLE_GGML_CPU_VARIANT must load the level's CPU variant library where the
build has them, and a one-ISA build must say it cannot be capped rather than run uncapped.

The variant half needs a GGML_CPU_ALL_VARIANTS build (benchmarks/build_llama_cpp_variants.py)
named by QORACLE_GGML_LIB_DIR (its llama_cpp/lib folder); without one it is skipped with the
reason. Each level runs in a fresh worker with the level's knobs, as the conformance suite does,
so what is checked is the library the suite's calls really reach.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.ggml.libggml import (
    LIB_DIR_ENV,
    LibGGMLUnavailable,
    cpu_variants,
    find_lib_dir,
)
from kernels.isa import GGML_VARIANT, ORDER, host_has, knobs_for
from kernels.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
CALLS = "kernels.ggml.calls"
# what kernels.ggml.calls.observe() must call each level's variant: its ggml_cpu_has_* read back
ISA_OF = {"x64": "scalar", "haswell": "avx2", "skylakex": "avx512", "icelake": "avx512_vnni",
          "sapphirerapids": "amx"}


def _variant_dir() -> Path:
    d = os.environ.get(LIB_DIR_ENV)
    if not d:
        pytest.skip(f"{LIB_DIR_ENV} is not set: no GGML_CPU_ALL_VARIANTS build to check "
                    f"(benchmarks/build_llama_cpp_variants.py makes one)")
    if not cpu_variants(Path(d)):
        pytest.skip(f"{LIB_DIR_ENV}={d} holds no libggml-cpu-<variant>.so: not a GGML_CPU_ALL_VARIANTS build")
    return Path(d)


def _default_dir() -> Path:
    """The default install's lib folder (not QORACLE_GGML_LIB_DIR / LLAMA_CPP_LIB_PATH)."""
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k in (LIB_DIR_ENV, "LLAMA_CPP_LIB_PATH"):
                mp.delenv(k, raising=False)
            d = find_lib_dir()
    except LibGGMLUnavailable as e:
        pytest.skip(str(e))
    if not (d / "libggml-base.so").exists():
        pytest.skip(f"no libggml-base.so in {d}")
    if cpu_variants(d):
        pytest.skip(f"the installed llama-cpp-python ({d}) is a variant build, not the default one-ISA one")
    return d


def _observe(level: str, extra: dict[str, str]) -> tuple[dict, dict]:
    """(available(), observe()) of the ggml adapter in a fresh worker capped at `level`."""
    w = Worker({**knobs_for(level), **extra}, emulate="off")
    try:
        avail = w.call(CALLS, "available")
        assert avail.ok, avail.detail
        seen = w.call(CALLS, "observe") if avail.value["ok"] else None
        return avail.value, (seen.value if seen is not None and seen.ok else {})
    finally:
        w.close()


def _registry(extra: dict[str, str], drop: tuple[str, ...] = ()) -> dict:
    """How a fresh process registers and runs the CPU-backend ggml kernels (isa_knobs, mode per level):
    registration reads the lib folder once, at import."""
    code = ("import json; import kernels.ggml; from kernels.registry import find; from kernels.isa import mode, ORDER\n"
            "out = {}\n"
            "for n in ('ggml.from_float', 'ggml.vec_dot', 'ggml.mul_mat'):\n"
            "    k = find(n); out[n] = {'knobs': list(k.isa_knobs), 'modes': {lv: mode(k, lv, emulate='off').how for lv in ORDER}}\n"
            "print(json.dumps(out))")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, check=False,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


# ---- a GGML_CPU_ALL_VARIANTS build ---------------------------------------------------------------

@pytest.mark.parametrize("level", ORDER)
def test_each_level_loads_its_variant(level):
    lib_dir = _variant_dir()
    want = knobs_for(level)[GGML_VARIANT]
    assert want in cpu_variants(lib_dir), f"the build has no {want} variant for --isa {level}"
    avail, seen = _observe(level, {LIB_DIR_ENV: str(lib_dir)})
    if not host_has(level)[0]:  # a variant above this CPU is refused with the reason, never loaded
        assert not avail["ok"] and "lacks" in avail["reason"] and want in avail["reason"], avail
        return
    assert avail["ok"], avail["reason"]
    assert seen["variant"] == want, seen
    assert seen["isa"] == ISA_OF[want], seen  # its compile-time features are that level's


def test_variant_build_registers_the_knob():
    lib_dir = _variant_dir()
    reg = _registry({LIB_DIR_ENV: str(lib_dir)})
    for name, r in reg.items():
        assert r["knobs"] == [GGML_VARIANT], (name, r)
        for level, how in r["modes"].items():
            assert how == ("capped" if host_has(level)[0] else "unavailable"), (name, level, how)


def test_unpinned_variant_build_picks_ggmls_best():
    """Without a variant named, the adapter picks as ggml's loader does: the highest score here."""
    lib_dir = _variant_dir()
    w = Worker({LIB_DIR_ENV: str(lib_dir)}, emulate="off")
    try:
        seen = w.call(CALLS, "observe")
    finally:
        w.close()
    assert seen.ok, seen.detail
    top = [lv for lv in ORDER if host_has(lv)[0]][-1]
    assert seen.value["isa"] == top, seen.value


# ---- the default one-ISA install ----------------------------------------------------------------

def test_one_isa_build_says_it_cannot_cap():
    lib_dir = _default_dir()
    extra = {LIB_DIR_ENV: str(lib_dir)}
    avail, seen = _observe("scalar", extra)
    assert avail["ok"], avail["reason"]
    assert seen["variant"] is None, seen  # what conformance/test_ggml.py turns into UNAVAILABLE at a cap
    code = ("from kernels.ggml.libggml import load; lib = load(); print(lib.requested); print(lib.variant); "
            "print(lib.cap_refusal())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, **knobs_for("scalar"), **extra}).stdout.splitlines()
    assert out[:2] == ["x64", "None"], out
    assert out[2].startswith("cannot cap: libggml-cpu.so is a one-ISA build") and "x64" in out[2], out
    uncapped = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                              env={**{k: v for k, v in os.environ.items() if k != GGML_VARIANT}, **extra}).stdout
    assert uncapped.splitlines() == ["None", "None", "None"]  # nothing asked, nothing refused


def test_one_isa_build_registers_no_knob():
    lib_dir = _default_dir()
    reg = _registry({LIB_DIR_ENV: str(lib_dir)})
    top = [lv for lv in ORDER if host_has(lv)[0]][-1]
    for name, r in reg.items():
        assert r["knobs"] == [], (name, r)
        assert r["modes"]["scalar"] == ("native" if top == "scalar" else "unavailable"), (name, r)
