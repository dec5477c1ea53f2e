"""Caller layouts show the right values over guarded storage, and a spec is validated against the registries."""
from __future__ import annotations

import numpy as np
import pytest

from kernels.layouts import LAYOUTS, as_numpy, guard_intact, make
from kernels.spec import KernelSpec, register_spec, specs
from oracle.gemm import semantics


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_shows_the_logical_values(layout: str) -> None:
    a = np.arange(15, dtype=np.int8).reshape(3, 5)
    if layout == "broadcast":
        a = np.repeat(a[:1], 3, 0)
    v = make(a, layout)
    assert np.array_equal(v.logical, a) and v.layout == layout
    assert guard_intact(v, v.storage.copy())


def test_a_write_outside_the_view_is_seen_and_one_inside_is_not() -> None:
    v = make(np.zeros((3, 4), np.int32), "row_pitch")
    before = v.storage.copy()
    as_numpy(v, writeable=True)[...] = 7
    assert guard_intact(v, before)
    v.storage[4] = 0  # the row pitch padding after row 0
    assert not guard_intact(v, before)


def test_layouts_are_what_they_say() -> None:
    a = np.ones((4, 6), np.float32)
    assert make(a, "transposed").strides == (1, 4)
    assert make(a, "row_pitch").strides[0] > 6
    assert make(a, "broadcast").strides == (0, 1)
    assert make(a, "offset").offset == 1 and make(a, "batch_row").offset == 6
    with pytest.raises(ValueError, match="equal rows"):
        make(np.arange(4, dtype=np.float32).reshape(2, 2), "broadcast")


def test_every_registered_spec_names_registered_semantics() -> None:
    assert specs()
    for s in specs():
        assert s.semantics in semantics.SEMANTICS


@pytest.mark.parametrize("change, message", [
    (dict(semantics="no.such.semantics"), "unknown GEMM semantics"),
    (dict(args=("a", "z")), "not operands"),
    (dict(layouts={"a": ("dense", "diagonal")}), "layouts"),
    (dict(layouts={"a": ("transposed",)}), "'dense' required"),
    (dict(kernel="no.such.kernel"), "unregistered kernel"),
    (dict(worker="gpu"), "worker"),
    (dict(worker="triton"), "worker"),  # a CPU kernel in the Triton worker would be retired in the wrong one
])
def test_a_spec_that_names_nothing_real_is_refused(change: dict, message: str) -> None:
    base = dict(kernel="torch.int_mm", call="int_mm_view", semantics="w8a8.int32_wrap", args=("a", "b.T"))
    with pytest.raises(ValueError, match=message):
        register_spec(KernelSpec(**{**base, **change}))
