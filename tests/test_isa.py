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
    assert knobs_for("amx") == {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX",
                                "QORACLE_GGML_CPU_VARIANT": "sapphirerapids"}
    assert knobs_for("native") == {}
    with pytest.raises(ValueError, match="unknown ISA level"):
        knobs_for("sse9")


def test_known_defect_below_a_level(monkeypatch):
    from conformance import known_defects as kd

    d = kd.KnownDefect("k.x", "*", "c", "t::*", "ref", "why", below="avx512_vnni")
    monkeypatch.setattr(kd, "DEFECTS", [d])
    assert kd.lookup("k.x", "avx2", "t::a") is d
    assert kd.lookup("k.x", "amx", "t::a") is None
    monkeypatch.setattr(kd, "levels_on_host", lambda: ["scalar", "avx2", "avx512", "avx512_vnni"])
    assert kd.lookup("k.x", "native", "t::a") is None
    monkeypatch.setattr(kd, "levels_on_host", lambda: ["scalar", "avx2"])
    assert kd.lookup("k.x", "native", "t::a") is d


def test_known_defect_narrowed_to_package_versions(monkeypatch):
    from conformance import known_defects as kd

    d = kd.KnownDefect("k.x", "*", "c", "t::*", "ref", "why", packages={"somepkg": "2.11"})
    monkeypatch.setattr(kd, "DEFECTS", [d])
    monkeypatch.setattr(kd, "_installed", lambda dist: "2.11.0+cu130")
    assert kd.lookup("k.x", "avx2", "t::a") is d
    monkeypatch.setattr(kd, "_installed", lambda dist: "2.13.0+cpu")
    assert kd.lookup("k.x", "avx2", "t::a") is None
