"""Every registered GGML block format, byte for byte against libggml itself.

For each name in oracle.format_names(): oracle.quantize must give exactly the bytes of
`ggml_quantize_chunk` (no imatrix: the `_ref` quantizers), and oracle.dequantize exactly the
float32 bit patterns of the type's `to_float`, on random data at magnitudes from subnormal
scales to near overflow and on crafted blocks. Dotted names are the same layout rounded as a
particular build does; they are compared only where their name says which code path of this
library they model:
  `.nofma`: the reference quantizer compiled without FMA contraction, which is how this
            libggml-base is built (baseline x86-64; pinned by test_this_build_rounds_q4_0_unfused);
  `.x86`:   the x86 CPU backend's activation quantizer, compared with its `from_float`;
  `.fma`:   FMA-contracted builds (aarch64, -march=native): not this library, skipped.
The module is generic: formats that other modules have not registered yet are simply absent.
"""
from __future__ import annotations

import numpy as np
import pytest

import oracle

from kernels.ggml.libggml import LibGGMLUnsupported
from tests.kernel_calls import libggml

LIB = libggml()  # in a worker process: a libggml fault fails a test, not the run

pytestmark = pytest.mark.libggml
F32 = np.float32


def _target(name: str) -> tuple[str, str]:
    """(ggml type, path): path is 'ref' (quantize_chunk), 'cpu' (from_float) or a skip reason."""
    base, _, variant = name.partition(".")
    if base not in LIB.type_names():
        return base, f"libggml {LIB.version} has no type {base}"
    if variant in ("", "nofma"):
        return base, "ref"
    if variant == "x86":
        if not LIB.cpu_features().get("avx2"):
            return base, "libggml-cpu here is not an AVX2 build; .x86 models the AVX/AVX2 path"
        return base, "cpu"
    if variant == "fma":
        return base, "models FMA-contracted builds (aarch64, -march=native); this libggml-base is baseline x86-64"
    return base, f"variant {variant!r} names no code path of this libggml"


NAMES = oracle.format_names()


def _k(name: str) -> int:
    return 2 * int(np.lcm(oracle.get_format(name).block_size, 256))


def random_rows(name: str) -> np.ndarray:
    """Gaussian, uniform-positive and heavy-tailed rows at scales from 1e-30 to 1e30."""
    rng = np.random.default_rng(sum(map(ord, name)))
    k = _k(name)
    rows = []
    for scale in (1e-30, 1e-8, 1e-3, 1.0, 7.0, 1e3, 1e5, 1e30):
        rows.append(rng.standard_normal(k) * scale)
        rows.append(rng.uniform(0, 1, k) * scale)
        rows.append(rng.standard_cauchy(k) * scale)
    return np.array(rows, dtype=F32)


def crafted_rows(name: str) -> np.ndarray:
    """Blocks that sit on rounding decisions or at the edges of the number system."""
    bs = oracle.get_format(name).block_size
    k = _k(name)
    rng = np.random.default_rng(5)
    tiny = np.float32(1e-45)  # the smallest float32 subnormal
    half_steps = (rng.integers(-16, 17, k) + 0.5).astype(F32)
    half_steps[::bs] = -8.0  # q4_0-style d = 1: every x*id + 8.5 is then an exact tie
    ties = rng.standard_normal(k).astype(F32)
    ties[::bs] = 3.0
    ties[1::bs] = -3.0  # +max and -max in one block: the first one wins
    ties2 = ties.copy()
    ties2[::bs], ties2[1::bs] = -3.0, 3.0
    rows = [
        np.zeros(k), np.full(k, 1.0), np.full(k, -2.5), np.full(k, 1e-40),
        rng.integers(1, 50, k) * tiny, -rng.integers(1, 50, k) * tiny,
        rng.standard_normal(k) * 1e36, np.full(k, 3e38), rng.uniform(-3e38, 3e38, k),
        half_steps, half_steps / 7, ties, ties2,
        np.abs(rng.standard_normal(k)), -np.abs(rng.standard_normal(k)),
        rng.integers(-127, 128, k), np.where(rng.random(k) < 0.9, 0.0, rng.standard_normal(k)),
        np.tile(np.linspace(-1, 1, bs), k // bs), np.repeat(rng.standard_normal(k // bs), bs),
    ]
    with np.errstate(over="ignore"):
        return np.array(rows, dtype=F32)


def assert_same_bytes(ours: np.ndarray, theirs: np.ndarray, x: np.ndarray, what: str) -> None:
    if np.array_equal(ours, theirs):
        return
    bad_rows = np.flatnonzero((ours != theirs).any(axis=1))
    r = bad_rows[0]
    col = int(np.flatnonzero(ours[r] != theirs[r])[0])
    raise AssertionError(f"{what}: {bad_rows.size} of {len(ours)} rows differ; row {r} byte {col}: "
                         f"ours {ours[r, col]} theirs {theirs[r, col]}; row starts {x[r, :4].tolist()}")


def assert_same_f32(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    same = (ours.view(np.uint32) == theirs.view(np.uint32)) | (np.isnan(ours) & np.isnan(theirs))
    if not same.all():
        i = np.argwhere(~same)[0]
        raise AssertionError(f"{what}: {(~same).sum()} values differ; first at {tuple(i)}: "
                             f"ours {ours[tuple(i)]!r} theirs {theirs[tuple(i)]!r}")


def _their_bytes(base: str, path: str, x: np.ndarray) -> np.ndarray:
    return LIB.quantize(x, base) if path == "ref" else LIB.from_float_cpu(x, base)


@pytest.mark.parametrize("data", ["random", "crafted"])
@pytest.mark.parametrize("name", NAMES)
def test_quantize_bytes_match_libggml(name: str, data: str) -> None:
    base, path = _target(name)
    if path not in ("ref", "cpu"):
        pytest.skip(path)
    why = LIB.quantize_refusal(base) if path == "ref" else None
    if why:
        pytest.skip(why)
    x = random_rows(name) if data == "random" else crafted_rows(name)
    with np.errstate(all="ignore"):
        ours = oracle.quantize(x, name)
    assert_same_bytes(ours, _their_bytes(base, path, x), x, f"{name} vs libggml {path}")


@pytest.mark.parametrize("name", NAMES)
def test_dequantize_matches_to_float(name: str) -> None:
    """On libggml's own bytes of every data set above and on uniformly random bytes."""
    base, path = _target(name)
    if path == "cpu":
        pytest.skip("a .x86 name shares the reference dequantizer, tested under the plain name")
    if path != "ref":
        pytest.skip(path)
    try:
        LIB.dequantize(np.zeros((1, LIB.row_bytes(base, _k(name))), np.uint8), base, _k(name))
    except LibGGMLUnsupported as e:
        pytest.skip(str(e))
    k = _k(name)
    blobs = [np.random.default_rng(9).integers(0, 256, (16, LIB.row_bytes(base, k)), dtype=np.uint8)]
    if not LIB.quantize_refusal(base):
        with np.errstate(all="ignore"):
            blobs += [LIB.quantize(random_rows(name), base), LIB.quantize(crafted_rows(name), base)]
    for q in blobs:
        with np.errstate(all="ignore"):
            ours = oracle.dequantize(q, name)
        assert_same_f32(ours, LIB.dequantize(q, base, k), f"{name} dequantize vs to_float")


def test_this_build_rounds_q4_0_unfused() -> None:
    """A block where `x*id + 8.5f` rounded twice and once give different codes: libggml's
    bytes must be q4_0's (unfused, the x86-64 alias) and not q4_0.fma's."""
    if not {"q4_0", "q4_0.fma"} <= set(NAMES):
        pytest.skip("q4_0 and q4_0.fma are not both registered")
    rng = np.random.default_rng(1)
    n = 2048
    x = rng.uniform(-1, 1, (n, 32)).astype(F32)
    x[:, 0] = -rng.uniform(1.5, 2, n).astype(F32)  # the block's max, so d = max / -8 > 0
    d = (x[:, :1] / F32(-8)).astype(F32)
    inv = (F32(1) / d).astype(F32)
    # x*id within a few ulps of (c - 8.5), where truncation switches from code c-1 to c; the
    # single and the double rounding of x*id + 8.5 then land on different sides for some x
    c = rng.integers(1, 16, (n, 31))
    near = ((c - 8.5) / inv).astype(F32)
    for _ in range(2):
        step = rng.integers(-1, 2, near.shape)
        up, down = np.nextafter(near, F32(np.inf)), np.nextafter(near, F32(-np.inf))
        near = np.where(step > 0, up, np.where(step < 0, down, near))
    x[:, 1:] = near
    with np.errstate(all="ignore"):
        fused, unfused = oracle.quantize(x, "q4_0.fma"), oracle.quantize(x, "q4_0")
    split = np.flatnonzero((fused != unfused).any(axis=1))
    assert split.size > 0, "no separating block found: enlarge the search"
    x = x[split]
    theirs = LIB.quantize(x, "q4_0")
    assert np.array_equal(theirs, unfused[split])
    assert not np.array_equal(theirs, fused[split])
