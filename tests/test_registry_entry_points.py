"""Third-party adapters register through the `qoracle.kernels` entry point group, without forking.

Nothing is installed: `entry_points` as kernels.registry sees it is replaced by one returning a
real `importlib.metadata.EntryPoint` that names a module written to tmp_path, and the registry's
state is saved and restored around the test.
"""
from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from kernels import registry

MODULE = "qoracle_thirdparty_fake_adapter"


@pytest.fixture
def clean_registry(monkeypatch):
    """A registry about to load again; exactly the registrations before the test come back afterwards.

    The built-in adapters are loaded first: their modules register only when first imported, so
    a snapshot taken before that would lose them for every later test.
    """
    registry.kernels()
    saved = dict(registry._REGISTRY)
    monkeypatch.setattr(registry, "_loaded", False)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry._loaded = True
    sys.modules.pop(MODULE, None)


def test_entry_point_module_registers_its_kernel(tmp_path, monkeypatch, clean_registry):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(f"""
        from kernels.registry import KernelInfo, register

        INFO = register(KernelInfo("thirdparty.fake_gemm", "fake-dist", "fake_gemm", __name__,
                                   conventions=("q8_0",), dtypes=("fp32",)))

        def available():
            return {{"ok": False, "reason": "a fake", "version": ""}}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    asked = []

    def fake_entry_points(**kwargs):
        asked.append(kwargs)
        return [EntryPoint(name="fake", value=f"{MODULE}:INFO", group=kwargs.get("group", ""))]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)

    info = registry.get("thirdparty.fake_gemm")
    assert asked == [{"group": registry.ENTRY_POINT_GROUP}]
    assert (info.package, info.op, info.module, info.conventions) == ("fake-dist", "fake_gemm", MODULE, ("q8_0",))
    assert info.family == "thirdparty"
    assert [k.name for k in registry.select(["thirdparty.*"])] == ["thirdparty.fake_gemm"]
    names = [k.name for k in registry.kernels()]
    assert "thirdparty.fake_gemm" in names and "ggml.quantize" in names  # built-ins still load beside it
    assert sys.modules[MODULE].INFO is info


def test_entry_point_clash_with_a_builtin_name_is_an_error(tmp_path, monkeypatch, clean_registry):
    """A third party cannot silently replace a built-in adapter's declaration."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent("""
        from kernels.registry import KernelInfo, register

        register(KernelInfo("ggml.quantize", "fake-dist", "fake", __name__))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "entry_points",
                        lambda **kw: [EntryPoint(name="clash", value=MODULE, group=kw.get("group", ""))])
    with pytest.raises(ValueError, match="registered twice"):
        registry.kernels()
