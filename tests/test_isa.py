"""ISA levels: parsing cpuinfo, ordering, and the knobs each level sets."""
import pytest

from kernels.isa import ORDER, host_has, knobs_for, levels_on_host, host_flags

SPR = "processor : 0\nflags : fpu sse4_2 avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_vnni amx_tile amx_int8 amx_bf16\n"
ZEN3 = "flags : fpu sse4_1 sse4_2 avx f16c avx2 fma\n"


def test_levels_follow_the_flags():
    assert levels_on_host(host_flags(SPR)) == list(ORDER)
    assert levels_on_host(host_flags(ZEN3)) == ["scalar", "avx2"]


def test_missing_level_says_what_is_missing():
    ok, why = host_has("amx", host_flags(ZEN3))
    assert not ok and "amx_int8" in why and "avx512f" in why


def test_knobs():
    assert knobs_for("amx") == {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}
    assert knobs_for("native") == {}
    with pytest.raises(ValueError, match="unknown ISA level"):
        knobs_for("sse9")
