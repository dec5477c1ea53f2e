"""Which CPU library the libggml adapter loads: the ISA cap's variant, or the one-ISA build."""
import pytest

from kernels.ggml.libggml import LibGGMLUnavailable, _pick_cpu_lib


def test_the_requested_variant_is_loaded(tmp_path):
    for v in ("x64", "haswell", "skylakex", "sapphirerapids"):
        (tmp_path / f"libggml-cpu-{v}.so").touch()
    assert _pick_cpu_lib(tmp_path, "haswell") == tmp_path / "libggml-cpu-haswell.so"
    assert _pick_cpu_lib(tmp_path, "x64") == tmp_path / "libggml-cpu-x64.so"
    with pytest.raises(LibGGMLUnavailable, match="no CPU variant 'icelake'.*haswell"):
        _pick_cpu_lib(tmp_path, "icelake")


def test_a_one_isa_build_ignores_the_variant(tmp_path):
    (tmp_path / "libggml-cpu.so").touch()
    assert _pick_cpu_lib(tmp_path, "haswell") == tmp_path / "libggml-cpu.so"
    assert _pick_cpu_lib(tmp_path, None) == tmp_path / "libggml-cpu.so"
