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


def test_inside_an_emulated_worker_the_host_flags_are_its_cpuid(monkeypatch):
    """qemu-user does not emulate /proc/cpuinfo, so a process on an emulated CPU reads cpuid instead."""
    from kernels import emulation

    monkeypatch.setattr(emulation, "cpuid_flags", lambda: frozenset({"sse4_2"}))
    assert host_flags() != frozenset({"sse4_2"})  # the real host: /proc/cpuinfo
    monkeypatch.setenv(emulation.EMULATED_ENV, "Nehalem-v1")
    assert host_flags() == frozenset({"sse4_2"}) and levels_on_host() == ["scalar"]
    assert "avx2" in host_flags(ZEN3)  # text passed in is still parsed as given


def _defect(**kw):
    from conformance import known_defects as kd

    return kd.KnownDefect("k.x", "t::*", "c", "ref", "why", evidence=(("a host", "seen"),), **kw)


def test_known_defect_keyed_by_features_the_library_sees(monkeypatch):
    """A defect of a missing instruction triggers where the kernel's library does not see it: on a
    host without it, or under a cap that hides it (only for a library that has a knob)."""
    from conformance import known_defects as kd

    d = _defect(lacks_all=("avx512_vnni", "avx_vnni"))
    monkeypatch.setattr(kd, "DEFECTS", [d])
    spr, zen3 = host_flags(SPR), host_flags(ZEN3)
    monkeypatch.setattr(kd, "_has_knob", lambda kernel: True)
    assert kd.lookup("k.x", "avx2", "t::a", spr) is d
    assert kd.lookup("k.x", "amx", "t::a", spr) is None
    assert kd.lookup("k.x", "native", "t::a", spr) is None
    assert kd.lookup("k.x", "native", "t::a", zen3) is d
    assert kd.lookup("k.y", "native", "t::a", zen3) is None and kd.lookup("k.x", "native", "u::a", zen3) is None
    monkeypatch.setattr(kd, "_has_knob", lambda kernel: False)  # dispatches on cpuid: a cap hides nothing
    assert kd.lookup("k.x", "avx2", "t::a", spr) is None


def test_known_defect_needing_a_feature(monkeypatch):
    from conformance import known_defects as kd

    d = _defect(has_all=("avx512f",))
    monkeypatch.setattr(kd, "DEFECTS", [d])
    monkeypatch.setattr(kd, "_has_knob", lambda kernel: True)
    assert kd.lookup("k.x", "avx512", "t::a", host_flags(SPR)) is d
    assert kd.lookup("k.x", "avx2", "t::a", host_flags(SPR)) is None
    assert kd.lookup("k.x", "native", "t::a", host_flags(ZEN3)) is None


def test_known_defect_of_the_native_gpu_path(monkeypatch):
    """A 'cuda' trigger holds where the session runs the kernel on a GPU, and nowhere else."""
    from conformance import known_defects as kd

    d = _defect(has_all=("cuda",))
    monkeypatch.setattr(kd, "DEFECTS", [d])
    monkeypatch.setattr(kd, "_has_knob", lambda kernel: False)
    assert kd.lookup("k.x", "native", "t::a", host_flags(SPR), gpu=True) is d
    assert kd.lookup("k.x", "native", "t::a", host_flags(SPR)) is None


def test_known_defect_narrowed_to_package_versions(monkeypatch):
    from conformance import known_defects as kd

    d = _defect(packages={"somepkg": "2.11"})
    monkeypatch.setattr(kd, "DEFECTS", [d])
    monkeypatch.setattr(kd, "_installed", lambda dist: "2.11.0+cu130")
    assert kd.lookup("k.x", "avx2", "t::a", host_flags(ZEN3)) is d
    monkeypatch.setattr(kd, "_installed", lambda dist: "2.13.0+cpu")
    assert kd.lookup("k.x", "avx2", "t::a", host_flags(ZEN3)) is None


def test_known_defect_signature_is_the_registered_failure_only():
    from conformance import known_defects as kd

    d = _defect(signature=r"^CRASHED\b")
    assert kd.matches_signature(d, "CRASHED: int8pack_mm [torch.int8pack]\n  crashed: SIGSEGV")
    assert not kd.matches_signature(d, "FAIL: int8pack_mm [torch.int8pack]\n  first bad element (0, 1)")


def test_every_registered_defect_carries_evidence_and_a_reference():
    from conformance import known_defects as kd
    from kernels.registry import select

    for d in kd.DEFECTS:
        assert select([d.kernel]), f"{d.kernel} matches no registered kernel"
        assert d.evidence and all(host and seen for host, seen in d.evidence), d.kernel
        assert d.reference and d.why and d.nodeid_glob.startswith("conformance/test_"), d.kernel
        assert "/work/" not in d.reference + d.why, d.kernel
