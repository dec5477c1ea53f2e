"""Emulated ISA levels: the level -> CPU model table and how each kernel runs at each level (no
qemu needed), then, where qemu-x86_64 is installed, the cpuid seen inside an emulated worker and
MLAS's u8 x s8 accumulator judged on each emulated CPU."""
import ctypes
import importlib.util
import mmap
import os
import platform

import numpy as np
import pytest

from kernels import emulation
from kernels.emulation import MODELS, NOT_EMULATED, Check, Qemu
from kernels.isa import LEVELS, ORDER, Mode, host_flags, knobs_for, level_of, levels_on_host, mode
from kernels.registry import KernelInfo
from kernels.worker import Worker

SPR = host_flags("flags : sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_vnni "
                 "amx_tile amx_int8 amx_bf16\n")
ZEN3 = host_flags("flags : sse4_1 sse4_2 avx f16c avx2 fma\n")
ALDER = ZEN3 | {"avx_vnni"}
MLAS = KernelInfo("onnxruntime.x", "onnxruntime", "MatMulInteger", "kernels.onnxruntime.int8_gemm")
ATEN = KernelInfo("torch.x", "torch", "op", "kernels.pytorch.x", isa_knobs=("ATEN_CPU_CAPABILITY",))
TRITON = KernelInfo("triton.x", "triton", "op", "kernels.triton.x")
ME = "tests.test_emulation"  # the probes at the end of this file run inside the worker


def _unusable(level: str) -> str:
    return emulation.why_not(level) if level in MODELS else "not emulated"


def needs(level: str):
    return pytest.mark.skipif(bool(_unusable(level)), reason=f"cannot emulate {level} here: {_unusable(level)}")


# --- the table and the mode of each kernel (no qemu needed) -------------------------------------------

def test_every_ordered_level_has_an_emulated_cpu_or_says_why_not():
    for level in ORDER:
        assert (level in MODELS) != (level in NOT_EMULATED), level
    assert "AVX512" in NOT_EMULATED["avx512"]
    for level, cpu in MODELS.items():
        above = set().union(*(LEVELS[lv].flags for lv in ORDER[ORDER.index(level) + 1:])) - LEVELS[level].flags
        assert above <= cpu.lacks and LEVELS[level].flags <= cpu.has and not cpu.has & cpu.lacks, level
    assert MODELS["scalar"].model == "Nehalem-v1" and "avx" in MODELS["scalar"].lacks  # the SSE41 / x64 floor
    assert MODELS["avx2"].model.startswith("Haswell-noTSX") and MODELS["avx2"].min_qemu == (7, 2)


def test_the_setting_is_off_unless_asked_and_checked():
    assert emulation.setting({}) == "off" and emulation.setting({emulation.ENV: "all"}) == "all"
    with pytest.raises(ValueError, match="QORACLE_EMULATE"):
        emulation.setting({emulation.ENV: "yes"})


def test_a_worker_knows_its_level_from_the_knobs_it_was_given():
    assert level_of({**knobs_for("scalar"), "OTHER": "1"}) == "scalar"
    assert level_of(knobs_for("avx512_vnni")) == "avx512_vnni" and level_of({}) is None
    assert Worker(knobs_for("avx2")).level == "avx2" and Worker({}).level is None


@pytest.fixture
def fake_qemu(monkeypatch):
    """qemu 7.2 present and every emulated CPU passing its cpuid check, without starting one."""
    monkeypatch.setattr(emulation.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(emulation, "qemu", lambda: Qemu("/usr/bin/qemu-x86_64", (7, 2, 0)))
    monkeypatch.setattr(emulation, "check", lambda level, timeout=120.0: Check(level, True, "", {}))


@pytest.mark.parametrize("flags, level, emulate, info, how, cpu", [
    (ZEN3, "scalar", "on", MLAS, "emulated", "Nehalem-v1"),
    (ZEN3, "scalar", "off", MLAS, "unavailable", ""),
    (ZEN3, "avx2", "on", MLAS, "native", ""),  # the host's top level is what MLAS picks
    (SPR, "avx2", "on", MLAS, "emulated", "Haswell"),  # a VNNI host's avx2 column
    (SPR, "avx512", "on", MLAS, "unavailable", ""),  # TCG has no AVX512
    (SPR, "amx", "on", MLAS, "native", ""),
    (ALDER, "avx2", "on", MLAS, "emulated", "Haswell"),  # AVX-VNNI sits above the avx2 level
    (ALDER, "avx2", "off", MLAS, "native", ""),
    (ZEN3, "scalar", "on", ATEN, "capped", ""),
    (ZEN3, "scalar", "all", ATEN, "emulated", "Nehalem-v1"),  # the second opinion
    (ZEN3, "avx2", "all", ATEN, "capped", ""),
    (ZEN3, "scalar", "on", TRITON, "native", ""),
    (ZEN3, "native", "on", MLAS, "native", ""),
    (ZEN3, "avx512", "on", ATEN, "unavailable", ""),
])
def test_mode(fake_qemu, flags, level, emulate, info, how, cpu):
    m = mode(info, level, flags=flags, emulate=emulate)
    assert m.how == how and m.cpu.startswith(cpu) and str(m) == how and m.why, m
    if how == "capped":
        assert m == Mode("capped", f"ATEN_CPU_CAPABILITY={knobs_for(level)['ATEN_CPU_CAPABILITY']}",
                         {"ATEN_CPU_CAPABILITY": knobs_for(level)["ATEN_CPU_CAPABILITY"]})


def test_without_qemu_a_knobless_level_below_the_host_is_unavailable_and_says_why(monkeypatch):
    monkeypatch.setattr(emulation, "qemu", lambda: None)
    m = mode(MLAS, "scalar", flags=ZEN3, emulate="on")
    assert m.how == "unavailable" and "qemu-x86_64 is not on PATH" in m.why and "apt-get install qemu-user" in m.why
    assert "QORACLE_EMULATE=on" in mode(MLAS, "scalar", flags=ZEN3, emulate="off").why
    second = mode(ATEN, "scalar", flags=ZEN3, emulate="all")  # a knob still caps it
    assert second.how == "capped" and "not emulated: qemu-x86_64 is not on PATH" in second.why


def test_a_kernel_with_a_knob_beside_knobless_ones_in_its_module_runs_where_they_run(fake_qemu):
    """The worker routes by adapter module: linear_dynamic's onednn engine (a knob) shares its module
    with fbgemm, qnnpack and x86 (none), so under `on` it runs on the emulated CPU, its knob still set."""
    from kernels.registry import get

    onednn, fbgemm = get("torch.quantized.linear_dynamic.onednn"), get("torch.quantized.linear_dynamic.fbgemm")
    m = mode(onednn, "scalar", flags=ZEN3, emulate="on")
    assert m.how == "emulated" and m.knobs == {"ONEDNN_MAX_CPU_ISA": "SSE41"} and "still set" in m.why
    assert mode(fbgemm, "scalar", flags=ZEN3, emulate="on").how == "emulated"
    assert mode(onednn, "scalar", flags=ZEN3, emulate="off").how == "capped"
    assert mode(get("torch.int_mm"), "scalar", flags=ZEN3, emulate="on").how == "capped"


def test_an_old_qemu_serves_scalar_but_not_avx2(fake_qemu, monkeypatch):
    monkeypatch.setattr(emulation, "qemu", lambda: Qemu("/usr/bin/qemu-x86_64", (6, 2, 0)))
    assert emulation.why_not("scalar") == "" and "older than 7.2" in emulation.why_not("avx2")
    assert mode(MLAS, "avx2", flags=SPR, emulate="on").how == "unavailable"


def test_a_cpu_whose_cpuid_shows_more_than_the_level_judges_nothing(fake_qemu, monkeypatch):
    refused = Check("scalar", False, "cpuid still shows avx2", {})
    monkeypatch.setattr(emulation, "check", lambda level, timeout=120.0: refused)
    m = mode(MLAS, "scalar", flags=ZEN3, emulate="on")
    assert m.how == "unavailable" and "cpuid still shows avx2" in m.why


def test_a_level_is_judged_only_when_cpuid_lacks_what_is_above_it():
    assert emulation.unserved("scalar", {"cpuid": ["sse4_1", "sse4_2"], "numpy": ["SSE41", "SSE42"]}) == ""
    assert "cpuid still shows avx2" in emulation.unserved("scalar", {"cpuid": ["sse4_1", "sse4_2", "avx2"]})
    assert "cpuid lacks avx2" in emulation.unserved("avx2", {"cpuid": ["avx", "fma", "f16c", "sse4_1", "sse4_2"]})
    differs = emulation.unserved("scalar", {"cpuid": ["sse4_1", "sse4_2"], "numpy": ["SSE42", "AVX2"]})
    assert "numpy's cpuid reading differs on avx2" in differs


@pytest.mark.skipif(platform.machine() != "x86_64" or not os.path.exists("/proc/cpuinfo"), reason="needs x86-64 Linux")
def test_cpuid_read_here_agrees_with_proc_cpuinfo_on_the_real_cpu():
    names = {"sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
             "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
    assert emulation.cpuid_flags() & names == host_flags() & names


# --- on an emulated CPU (qemu-x86_64 installed) -------------------------------------------------------

@pytest.mark.parametrize("level", sorted(MODELS))
def test_the_emulated_cpuid_lacks_every_feature_above_the_level(level):
    if why := _unusable(level):
        pytest.skip(f"cannot emulate {level} here: {why}")
    c = emulation.check(level)
    assert c.ok, c.why
    seen = set(c.seen["cpuid"])
    assert MODELS[level].has <= seen and not seen & MODELS[level].lacks and c.seen["model"] == MODELS[level].model
    assert ("AVX2" in c.seen["numpy"]) == (level == "avx2")


@needs("scalar")
def test_an_emulated_worker_reports_its_cpuid_and_host_flags_follow_it():
    with Worker(timeout=60, level="scalar", emulated=True) as w:
        o = w.call("kernels.isa", "host_flags")
        assert o.ok and "sse4_2" in o.value and not o.value & MODELS["scalar"].lacks, o
        assert o.emulation["cpu"] == "Nehalem-v1" and o.emulation["cpuid"] == sorted(o.value)
        assert o.emulation["qemu"] == emulation.qemu().version_text


@needs("scalar")
def test_a_crash_on_the_emulated_cpu_is_an_outcome_and_the_next_call_works():
    with Worker(timeout=60, level="scalar", emulated=True) as w:
        o = w.call("tests.worker_probes", "segfault")
        assert o.status == "crashed" and "SIGSEGV" in o.detail, o.detail
        assert w.call("tests.worker_probes", "getenv", emulation.EMULATED_ENV).value == "Nehalem-v1"


@needs("scalar")
def test_a_library_built_for_a_newer_cpu_is_unavailable_there_not_a_load_failure():
    with Worker(timeout=60, level="scalar", emulated=True) as w:
        o = w.call(ME, "available_needs_avx2")
        assert o.ok and not o.load_failed and o.value["ok"] is False and "SIGILL" in o.value["reason"], o
        assert "cannot be judged at scalar" in o.value["reason"]
        assert w.call(ME, "available_needs_avx2") is o  # answered without loading it again
        o = w.call(ME, "run_avx2")  # past loading, an instruction the cpuid does not announce is a crash
        assert o.status == "crashed" and "SIGILL" in o.detail


@needs("scalar")
def test_an_emulated_cpu_that_does_not_stand_for_its_level_serves_nothing(monkeypatch):
    monkeypatch.setattr(emulation, "unserved", lambda level, seen: "cpuid still shows avx2")
    with Worker(timeout=60, level="scalar", emulated=True) as w:
        o = w.call("tests.worker_probes", "available")
        assert o.ok and o.value == {"ok": False, "reason": "cpuid still shows avx2"} and o.emulation["cpuid"]
        o = w.call("tests.worker_probes", "getenv", "X")
        assert o.status == "error" and "cpuid still shows avx2" in o.detail


@pytest.mark.skipif(levels_on_host() in ([], ["scalar"]), reason="the host has no level above scalar")
def test_a_level_worker_sends_knobless_kernels_to_the_emulated_cpu(fake_qemu):
    w = Worker(knobs_for("scalar"), emulate="on")
    assert w.emulates("kernels.onnxruntime.int8_gemm") and w.emulates("kernels.ggml.calls")
    assert not w.emulates("kernels.pytorch.int_mm") and not w.emulates("tests.worker_probes")
    assert not w.emulates("kernels.triton.w8a8")
    assert Worker(knobs_for("scalar"), emulate="all").emulates("kernels.pytorch.int_mm")
    assert not Worker(knobs_for("scalar"), emulate="off").emulates("kernels.onnxruntime.int8_gemm")
    assert not Worker({}, emulate="on").emulates("kernels.onnxruntime.int8_gemm")  # no level: native


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
@pytest.mark.parametrize("level, expected", [("avx2", 4194176), ("scalar", 8290560)])
def test_mlas_u8s8_on_the_emulated_cpu_is_what_the_oracle_predicts_for_its_cpuid(level, expected):
    """255 x 127 over K = 256: AVX2 without VNNI adds the pairs into a saturating int16 (4194176),
    as a real AVX2 host does; MLAS's SSE kernel widens first (the exact 8290560)."""
    if why := _unusable(level):
        pytest.skip(f"cannot emulate {level} here: {why}")
    from oracle.gemm.mlas_int8 import accumulator, model_for

    a, b = np.full((1, 256), 255, np.uint8), np.full((256, 1), 127, np.int8)
    with Worker(timeout=120, level=level, emulated=True) as w:
        o = w.call("kernels.onnxruntime.int8_gemm", "matmulinteger", a, b, None, None)
    assert o.ok, o.detail
    assert int(o.value["y"][0, 0]) == expected
    model = model_for(np.uint8, np.int8, o.emulation["cpuid"])
    assert np.array_equal(o.value["y"], accumulator(a, 0, b, 0, model))


# --- probes run inside the emulated worker --------------------------------------------------------------

def _machine_code(code: bytes):
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    return page, ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))


def run_avx2() -> None:
    """vpaddd ymm0, ymm0, ymm0; vzeroupper; ret: SIGILL on a CPU without AVX2."""
    _page, f = _machine_code(bytes.fromhex("c5fdfec0" "c5f877" "c3"))
    f()


def available_needs_avx2() -> dict:
    """An availability check whose library was compiled for AVX2 (-march=native on an AVX2 host)."""
    run_avx2()
    return {"ok": True, "reason": ""}
