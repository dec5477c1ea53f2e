"""ctypes adapter to libggml as bundled in llama-cpp-python: quantize, dequantize, vec_dot.

What it calls (declarations from the installed headers `include/ggml.h` and
`include/ggml-cpu.h` that llama-cpp-python 0.3.36 installs; ggml 0.25.x):
- `ggml_quantize_chunk(type, src, dst, start, nrows, n_per_row, imatrix)` (libggml-base):
  single-threaded; dispatches to `quantize_<type>` (ggml/src/ggml.c). A type without such a
  function (q8_1, q8_K, the integer types) reaches `assert(false)` and then a failing
  GGML_ASSERT, which aborts the process, and iq2_xxs, iq2_xs and iq1_s abort without an
  importance matrix (`ggml_quantize_requires_imatrix`). The adapter refuses all of these with
  a reason before calling, except that q8_1 and q8_K get their reference bytes from the
  exported `quantize_row_<type>_ref` (the same functions ggml's type traits name as
  `from_float_ref`).
- `ggml_get_type_traits(type)->to_float` (libggml-base): the reference dequantizer, or the
  exported `dequantize_row_<type>` where the traits have none (q8_K); q8_1 has neither.
- `ggml_get_type_traits_cpu(type)->{from_float, vec_dot, vec_dot_type}` (libggml-cpu): the
  CPU backend's SIMD activation quantizer and dot product, compiled for its ISA.
Type names are ggml's own (`ggml_type_name`), lower-cased: 'q4_0', 'q4_k', 'iq4_nl', 'mxfp4'.

The CPU backend of a default install is ONE library, `lib/libggml-cpu.so`. pip builds
llama-cpp-python from its sdist, and ggml's CMake turns GGML_NATIVE on unless it cross-compiles or
SOURCE_DATE_EPOCH is set (ggml/CMakeLists.txt, GGML_NATIVE_DEFAULT), so that library is compiled
with `-march=native`: it has the ISA of the machine that built it, AVX-512 included where that
machine had it, and no fixed list can be written down here. What it was compiled for is read
from the library itself: `cpu_features()` calls its ggml_cpu_has_* functions (compile-time
facts, not the host's), and `kernels.ggml.calls.observe()` reports them (`compiled`, and the
highest level as `isa`). There is no runtime ISA knob for it: the x86 code path is fixed when
the library is built. To get another path, rebuild llama-cpp-python with CMAKE_ARGS, e.g.
`-DGGML_NATIVE=OFF -DGGML_AVX512=ON` (one library) or
`-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON` (one `libggml-cpu-<variant>.so` per ISA:
x64, sse42, sandybridge, ivybridge, piledriver, haswell, skylakex, cannonlake, cascadelake,
icelake, cooperlake, zen4, alderlake, sapphirerapids in ggml 0.25; ggml's own loader picks the
supported one with the highest `ggml_backend_score()`); benchmarks/build_llama_cpp_variants.py
installs such a build. With variant libraries present, `load(cpu_variant=...)` or the
environment variable QORACLE_GGML_CPU_VARIANT selects one by name (kernels/isa.py names x64,
haswell, skylakex, icelake, sapphirerapids); a variant whose ISA this CPU lacks (score 0) is
refused with the reason rather than loaded to die of SIGILL; without either, the
highest-scoring one is used as ggml would. A one-ISA build has nothing to choose: a requested
variant is recorded (`LibGGML.requested`) and `cap_refusal()` says it cannot be imposed.
The lib folder is QORACLE_GGML_LIB_DIR (qoracle's own: it moves only this adapter), else
`LLAMA_CPP_LIB_PATH` (llama-cpp-python's, which also moves libllama), else the installed
package's lib/.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["LibGGML", "LibGGMLUnavailable", "LibGGMLUnsupported", "cpu_variants", "find_lib_dir", "load"]

VARIANT_ENV = "QORACLE_GGML_CPU_VARIANT"
LIB_DIR_ENV = "QORACLE_GGML_LIB_DIR"

_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                            ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class _TypeTraits(ctypes.Structure):
    """struct ggml_type_traits (ggml.h)."""

    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


class _TypeTraitsCpu(ctypes.Structure):
    """struct ggml_type_traits_cpu (ggml-cpu.h)."""

    _fields_ = [
        ("from_float", ctypes.c_void_p),
        ("vec_dot", ctypes.c_void_p),
        ("vec_dot_type", ctypes.c_int),
        ("nrows", ctypes.c_int64),
    ]


class LibGGMLUnavailable(RuntimeError):
    """libggml cannot be used here; the message says why (not installed, file or symbol missing)."""


class LibGGMLUnsupported(ValueError):
    """This libggml cannot do the request for this type without aborting the process."""


_CPU_FEATURES = ("sse3", "ssse3", "avx", "avx_vnni", "avx2", "bmi2", "f16c", "fma", "avx512",
                 "avx512_vbmi", "avx512_vnni", "avx512_bf16", "amx_int8", "neon", "arm_fma",
                 "fp16_va", "dotprod", "matmul_int8", "sve", "sme", "sme2", "riscv_v", "vsx",
                 "vxe", "wasm_simd", "llamafile")
_TYPE_COUNT_0_3_36 = 43  # GGML_TYPE_COUNT in the ggml.h that llama-cpp-python 0.3.36 ships
_CHUNK_EXTRA = ("f32", "f16", "bf16")  # handled inline by ggml_quantize_chunk (ggml.c)


def find_lib_dir() -> Path:
    """The folder with libggml-base.so: $QORACLE_GGML_LIB_DIR, $LLAMA_CPP_LIB_PATH, else the
    llama_cpp package's lib/ (found without importing llama_cpp, which would load libllama)."""
    env = os.environ.get(LIB_DIR_ENV) or os.environ.get("LLAMA_CPP_LIB_PATH")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise LibGGMLUnavailable("llama-cpp-python is not installed (no llama_cpp package)")
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


@dataclass(frozen=True)
class _Type:
    id: int
    name: str  # ggml's spelling, as in symbol names ('q4_K')
    blck_size: int
    type_size: int
    to_float: int | None
    from_float_ref: int | None


@dataclass
class LibGGML:
    """A loaded libggml-base + libggml-cpu pair. Build it with `load()`."""

    base: ctypes.CDLL
    cpu: ctypes.CDLL
    cpu_lib: Path
    version: str
    requested: str | None = None  # the variant asked for (argument or QORACLE_GGML_CPU_VARIANT)
    _types: dict[str, _Type] = field(default_factory=dict)

    @property
    def variant(self) -> str | None:
        """The CPU variant library in use ('x64', 'haswell' ...), None for a one-ISA build."""
        return _variant_name(self.cpu_lib)

    def cap_refusal(self) -> str | None:
        """Why the requested variant is not what runs (a one-ISA build cannot be capped), or None."""
        if self.requested is None or self.variant == self.requested:
            return None
        isa = ", ".join(f for f, on in self.cpu_features().items() if on) or "baseline x86-64"
        return (f"cannot cap: {self.cpu_lib.name} is a one-ISA build (compiled for {isa}) with no CPU variant "
                f"libraries, so {VARIANT_ENV}={self.requested} cannot be imposed; rebuild with "
                f"benchmarks/build_llama_cpp_variants.py")

    # ---- types ---------------------------------------------------------------------------
    def type_names(self) -> list[str]:
        """Every type this libggml knows, lower-case, in enum order."""
        return list(self._types)

    def _type(self, type_name: str) -> _Type:
        t = self._types.get(type_name.lower()) if isinstance(type_name, str) else None
        if t is None:
            raise ValueError(f"unknown ggml type {type_name!r}; known: {', '.join(self._types)}")
        return t

    def type_id(self, type_name: str) -> int:
        return self._type(type_name).id

    def block_size(self, type_name: str) -> int:
        return self._type(type_name).blck_size

    def type_size(self, type_name: str) -> int:
        """Bytes per block."""
        return self._type(type_name).type_size

    def row_bytes(self, type_name: str, k: int) -> int:
        t = self._type(type_name)
        return k // t.blck_size * t.type_size

    def _check_k(self, t: _Type, k: int) -> None:
        if k <= 0 or k % t.blck_size:
            raise ValueError(f"{t.name.lower()}: K={k} is not a positive multiple of the block size {t.blck_size}")

    # ---- reference quantize / dequantize ------------------------------------------------
    def quantize_refusal(self, type_name: str) -> str | None:
        """Why `quantize` refuses this type (it would abort the process), or None."""
        t = self._type(type_name)
        if self.base.ggml_quantize_requires_imatrix(t.id):
            return f"{t.name}: ggml_quantize_chunk needs an importance matrix (it aborts without one)"
        if self._chunk_handles(t) or self._ref_row(t) is not None:
            return None
        return f"{t.name}: ggml_quantize_chunk has no case for it (it aborts) and no quantize_row_{t.name}_ref"

    def _chunk_handles(self, t: _Type) -> bool:
        return t.name.lower() in _CHUNK_EXTRA or hasattr(self.base, f"quantize_{t.name}")

    def _ref_row(self, t: _Type) -> ctypes._CFuncPtr | None:
        return getattr(self.base, f"quantize_row_{t.name}_ref", None)

    def quantize(self, x: np.ndarray, type_name: str) -> np.ndarray:
        """float32 (rows, K) -> uint8 (rows, row bytes): ggml_quantize_chunk, no imatrix.

        q8_1 and q8_K, which quantize_chunk does not handle, use quantize_row_<type>_ref.
        """
        t = self._type(type_name)
        x = _f32_2d(x)
        rows, k = x.shape
        self._check_k(t, k)
        why = self.quantize_refusal(type_name)
        if why:
            raise LibGGMLUnsupported(why)
        out = np.zeros((rows, self.row_bytes(type_name, k)), dtype=np.uint8)
        if self._chunk_handles(t):
            self.base.ggml_quantize_init(t.id)
            n = self.base.ggml_quantize_chunk(t.id, _ptr(x), _ptr(out), 0, rows, k, None)
            if n != out.nbytes:
                raise RuntimeError(f"{t.name}: ggml_quantize_chunk wrote {n} bytes, expected {out.nbytes}")
        else:
            fn = self._ref_row(t)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            fn.restype = None
            fn(_ptr(x), _ptr(out), rows * k)  # blocks are independent and rows contiguous
        return out

    def dequantize(self, q: np.ndarray, type_name: str, k: int) -> np.ndarray:
        """uint8 (rows, row bytes) -> float32 (rows, k) through the type's `to_float`.

        k is the number of values per row; q's bytes are read as rows of row_bytes(k), so
        blocks (n, block bytes) with k = n * block size give one row.

        q8_K's traits have no to_float in this ggml; its exported dequantize_row_q8_K is used.
        """
        t = self._type(type_name)
        self._check_k(t, k)
        fn = t.to_float or ctypes.cast(getattr(self.base, f"dequantize_row_{t.name}", None), ctypes.c_void_p).value
        if not fn:
            raise LibGGMLUnsupported(f"{t.name}: no to_float in its type traits and no dequantize_row_{t.name}")
        q = _u8_rows(q, self.row_bytes(type_name, k))
        out = np.empty((q.shape[0], k), dtype=np.float32)
        _TO_FLOAT(fn)(_ptr(q), _ptr(out), q.shape[0] * k)
        return out

    # ---- CPU backend (SIMD) paths --------------------------------------------------------
    def _cpu_traits(self, t: _Type) -> _TypeTraitsCpu:
        return self.cpu.ggml_get_type_traits_cpu(t.id).contents

    def vec_dot_type(self, type_name: str) -> str:
        """The type the CPU backend quantizes activations to before `vec_dot` with this type."""
        vt = self._cpu_traits(self._type(type_name)).vec_dot_type
        return next(n for n, tt in self._types.items() if tt.id == vt)

    def from_float_cpu(self, x: np.ndarray, type_name: str) -> np.ndarray:
        """float32 (rows, K) -> uint8 through the CPU backend's from_float (x86 SIMD path)."""
        t = self._type(type_name)
        x = _f32_2d(x)
        rows, k = x.shape
        self._check_k(t, k)
        fn = self._cpu_traits(t).from_float
        if not fn:
            raise LibGGMLUnsupported(f"{t.name}: the CPU backend has no from_float")
        out = np.zeros((rows, self.row_bytes(type_name, k)), dtype=np.uint8)
        f = _FROM_FLOAT(fn)
        for r in range(rows):
            f(_ptr(x[r]), _ptr(out[r]), k)
        return out

    def vec_dot(self, type_name: str, n: int, x_bytes: np.ndarray, y_bytes: np.ndarray) -> float:
        """One dot product of n values: x in `type_name`, y in `vec_dot_type(type_name)`."""
        t = self._type(type_name)
        self._check_k(t, n)
        ct = self._cpu_traits(t)
        if not ct.vec_dot:
            raise LibGGMLUnsupported(f"{t.name}: the CPU backend has no vec_dot")
        yt = next(tt for tt in self._types.values() if tt.id == ct.vec_dot_type)
        self._check_k(yt, n)
        x = _u8_rows(x_bytes, self.row_bytes(type_name, n))
        y = _u8_rows(y_bytes, n // yt.blck_size * yt.type_size)
        if len(x) != 1 or len(y) != 1:
            raise ValueError(f"{t.name}: vec_dot takes the bytes of one row of {n} values for x and y")
        s = np.zeros(1, dtype=np.float32)
        _VEC_DOT(ct.vec_dot)(n, _ptr(s), 0, _ptr(x), 0, _ptr(y), 0, 1)
        return float(s[0])

    def cpu_features(self) -> dict[str, bool]:
        """ggml_cpu_has_*: the ISA extensions libggml-cpu was COMPILED for (not the host's)."""
        return {f: bool(getattr(self.cpu, "ggml_cpu_has_" + f)()) for f in _CPU_FEATURES
                if hasattr(self.cpu, "ggml_cpu_has_" + f)}


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _f32_2d(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
        raise ValueError(f"expected a float32 array of shape (rows, K), got {getattr(x, 'dtype', type(x).__name__)}")
    return np.ascontiguousarray(x)


def _u8_rows(q: np.ndarray, row_bytes: int) -> np.ndarray:
    if not isinstance(q, np.ndarray) or q.dtype != np.uint8 or q.size == 0 or q.size % row_bytes:
        got = f"{q.dtype} {q.shape}" if isinstance(q, np.ndarray) else type(q).__name__
        raise ValueError(f"expected uint8 holding whole rows of {row_bytes} bytes, got {got}")
    return np.ascontiguousarray(q).reshape(-1, row_bytes)


def _variant_name(path: Path) -> str | None:
    """'haswell' for libggml-cpu-haswell.so; None for the one-ISA libggml-cpu.so."""
    name = path.name.split(".so")[0]
    return name.removeprefix("libggml-cpu-") if name.startswith("libggml-cpu-") else None


def cpu_variants(lib_dir: Path | None = None) -> dict[str, Path]:
    """The per-ISA CPU libraries of a GGML_CPU_ALL_VARIANTS build by variant name ({} for a one-ISA
    build). Only file names are read: nothing is loaded."""
    lib_dir = find_lib_dir() if lib_dir is None else lib_dir
    return {_variant_name(p): p for p in sorted(lib_dir.glob("libggml-cpu-*.so"))}


def _score(path: Path) -> int:
    """ggml_backend_score() of a variant: 0 where this CPU lacks its ISA. The function is compiled
    without the variant's ISA flags (ggml-cpu's cpu-feats), so asking is safe on any x86 CPU, as
    ggml's own loader does; libggml-base must already be loaded (variants carry no RPATH to it)."""
    fn = getattr(ctypes.CDLL(str(path)), "ggml_backend_score", None)
    return int(fn()) if fn else 0


def _pick_cpu_lib(lib_dir: Path, variant: str | None) -> Path:
    variants = cpu_variants(lib_dir)
    one_isa = lib_dir / "libggml-cpu.so"
    if not variants and one_isa.exists():
        return one_isa  # a one-ISA build: nothing to choose; LibGGML.cap_refusal() says so
    if variant:
        if variant not in variants:
            raise LibGGMLUnavailable(f"no CPU variant {variant!r} in {lib_dir} (variants: {', '.join(variants) or 'none'})")
        return variants[variant]
    best, best_score = None, 0
    for path in variants.values():  # as ggml's loader does: the supported variant with the highest score
        score = _score(path)
        if score > best_score:
            best, best_score = path, score
    if best is None:
        raise LibGGMLUnavailable(f"no usable libggml-cpu*.so in {lib_dir}")
    return best


def _type_count(lib_dir: Path) -> int:
    """GGML_TYPE_COUNT from the ggml.h installed beside the package, else the 0.3.36 value."""
    header = lib_dir.parent.parent / "include" / "ggml.h"
    if header.exists():
        m = re.search(r"GGML_TYPE_COUNT\s*=\s*(\d+)", header.read_text(errors="replace"))
        if m:
            return int(m.group(1))
    return _TYPE_COUNT_0_3_36


def _version(lib_dir: Path) -> str:
    """llama-cpp-python's version from the dist-info beside lib_dir's package (QORACLE_GGML_LIB_DIR
    may name another install than the one importable here), else the importable one's."""
    for meta in sorted(lib_dir.parent.parent.glob("llama_cpp_python-*.dist-info/METADATA")):
        m = re.search(r"^Version:\s*(\S+)", meta.read_text(errors="replace"), re.MULTILINE)
        if m:
            return m.group(1)
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _symbol(lib: ctypes.CDLL, name: str, restype: object, argtypes: list) -> None:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise LibGGMLUnavailable(f"symbol {name} missing from {lib._name}") from None
    fn.restype = restype
    fn.argtypes = argtypes


def load(cpu_variant: str | None = None) -> LibGGML:
    """Load libggml-base and the CPU backend, or raise LibGGMLUnavailable with the reason."""
    lib_dir = find_lib_dir()
    base_path = lib_dir / "libggml-base.so"
    if not base_path.exists():
        raise LibGGMLUnavailable(f"libggml-base.so not found in {lib_dir}")
    requested = cpu_variant or os.environ.get(VARIANT_ENV) or None
    try:  # base first: a variant module finds libggml-base by soname only (no RPATH)
        base = ctypes.CDLL(str(base_path), mode=ctypes.RTLD_GLOBAL)
        cpu_path = _pick_cpu_lib(lib_dir, requested)
        if requested and _variant_name(cpu_path) == requested and _score(cpu_path) <= 0:
            raise LibGGMLUnavailable(f"CPU variant {requested!r} needs ISA extensions this CPU lacks (its "
                                     f"ggml_backend_score() is 0): its kernels would die of SIGILL here")
        cpu = ctypes.CDLL(str(cpu_path), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise LibGGMLUnavailable(f"cannot load libggml: {e}") from None
    i64, vp = ctypes.c_int64, ctypes.c_void_p
    _symbol(base, "ggml_quantize_chunk", ctypes.c_size_t, [ctypes.c_int, vp, vp, i64, i64, i64, vp])
    _symbol(base, "ggml_quantize_init", None, [ctypes.c_int])
    _symbol(base, "ggml_quantize_requires_imatrix", ctypes.c_bool, [ctypes.c_int])
    _symbol(base, "ggml_get_type_traits", ctypes.POINTER(_TypeTraits), [ctypes.c_int])
    _symbol(base, "ggml_type_name", ctypes.c_char_p, [ctypes.c_int])
    _symbol(cpu, "ggml_get_type_traits_cpu", ctypes.POINTER(_TypeTraitsCpu), [ctypes.c_int])
    _symbol(cpu, "ggml_cpu_init", None, [])
    cpu.ggml_cpu_init()  # fills the CPU backend's fp16 tables used by from_float / vec_dot
    lib = LibGGML(base=base, cpu=cpu, cpu_lib=cpu_path, version=_version(lib_dir), requested=requested)
    for i in range(_type_count(lib_dir)):  # ggml_type_name does not bounds-check its argument
        raw = base.ggml_type_name(i)
        name = raw.decode("ascii", "replace") if raw else ""
        tr = base.ggml_get_type_traits(i).contents
        if not name or tr.blck_size == 0 or "REMOVED" in name:  # ids of removed types
            continue
        lib._types[name.lower()] = _Type(i, name, tr.blck_size, tr.type_size,
                                         tr.to_float or None, tr.from_float_ref or None)
    return lib
