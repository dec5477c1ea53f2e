"""ctypes adapter to ggml_mul_mat on libggml's CPU backend, with the weight in each buffer type.

What llama.cpp runs for a quantized linear layer: a graph with one GGML_OP_MUL_MAT node,
W[N, K] (a quantized type) times X[M, K] (f32), computed by the CPU backend with n threads.
The weight lives in the default CPU buffer type or in one of the CPU device's extra buffer
types (ggml/src/ggml-cpu/ggml-cpu.cpp, ggml_backend_cpu_get_extra_buffer_types: AMX on builds
with AMX-INT8 and AVX512-VNNI, KleidiAI, CPU_REPACK). Putting the weight bytes into an extra
buffer type rewrites them into its own layout (ggml-cpu/repack.cpp,
ggml_backend_cpu_repack_buffer_set_tensor: q4_0/q4_K/iq4_nl/mxfp4 interleaved 8 rows x 8
bytes on AVX2), and its MUL_MAT is computed by that layout's GEMV/GEMM kernels.

Calls (declarations from the ggml headers shipped with the library, ggml.h, ggml-alloc.h,
ggml-backend.h, ggml-cpu.h of ggml 0.25.x):
- ggml_init(struct ggml_init_params {size_t mem_size; void *mem_buffer; bool no_alloc}),
  ggml_new_tensor_2d(ctx, type, ne0 = K, ne1 = rows), ggml_mul_mat(ctx, W, X) -> Y[M, N],
  ggml_new_graph + ggml_build_forward_expand (libggml-base);
- ggml_backend_cpu_reg() / ggml_backend_reg_dev_get(reg, 0): the CPU device;
  ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts") -> a
  NULL-terminated array of buffer types; ggml_backend_cpu_buffer_type() the default;
  ggml_backend_buft_name for their names;
- ggml_backend_alloc_ctx_tensors_from_buft (weight alone in its context, so that only it goes
  to the extra buffer type; X and Y in the default one);
- ggml_backend_dev_supports_op(dev, Y): with W allocated in an extra buffer type this is the
  check llama.cpp makes before it places a weight there. It is false when the buffer type has
  no layout for this type/shape (repack: N not a multiple of the interleave, or a type with no
  kernel for this CPU); ggml_backend_tensor_set would then dereference a null layout, so the
  adapter stops there and reports it;
- ggml_backend_tensor_set (the repack happens here), ggml_backend_cpu_init,
  ggml_backend_cpu_set_n_threads, ggml_backend_graph_compute, ggml_backend_tensor_get.
Whether the bytes were rewritten is read back from the weight's memory (ggml_get_data,
ggml_nbytes: every buffer type here is host memory) and compared with the bytes given.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from kernels.ggml.calls import _lib
from kernels.ggml.libggml import LibGGMLUnavailable

__all__ = ["available", "observe", "buffer_types", "mul_mat"]

DEFAULT = "CPU"  # ggml_backend_buft_name(ggml_backend_cpu_buffer_type())
_F32 = 0  # GGML_TYPE_F32


class _InitParams(ctypes.Structure):
    """struct ggml_init_params (ggml.h)."""

    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


_EXTRA_BUFTS = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)


class _Backend:
    """The symbols this adapter needs, declared once, and the CPU device's buffer types."""

    def __init__(self) -> None:
        lib = _lib()
        self.lib = lib
        vp, i64, sz = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t
        base, cpu = lib.base, lib.cpu
        decl = [
            (base, "ggml_init", vp, [_InitParams]),
            (base, "ggml_free", None, [vp]),
            (base, "ggml_tensor_overhead", sz, []),
            (base, "ggml_graph_overhead", sz, []),
            (base, "ggml_new_tensor_2d", vp, [vp, ctypes.c_int, i64, i64]),
            (base, "ggml_mul_mat", vp, [vp, vp, vp]),
            (base, "ggml_new_graph", vp, [vp]),
            (base, "ggml_build_forward_expand", None, [vp, vp]),
            (base, "ggml_nbytes", sz, [vp]),
            (base, "ggml_get_data", vp, [vp]),
            (base, "ggml_backend_buft_name", ctypes.c_char_p, [vp]),
            (base, "ggml_backend_cpu_buffer_type", vp, []),
            (base, "ggml_backend_alloc_ctx_tensors_from_buft", vp, [vp, vp]),
            (base, "ggml_backend_buffer_free", None, [vp]),
            (base, "ggml_backend_tensor_set", None, [vp, vp, sz, sz]),
            (base, "ggml_backend_tensor_get", None, [vp, vp, sz, sz]),
            (base, "ggml_backend_graph_compute", ctypes.c_int, [vp, vp]),
            (base, "ggml_backend_free", None, [vp]),
            (base, "ggml_backend_reg_dev_get", vp, [vp, sz]),
            (base, "ggml_backend_reg_get_proc_address", vp, [vp, ctypes.c_char_p]),
            (base, "ggml_backend_dev_supports_op", ctypes.c_bool, [vp, vp]),
            (base, "ggml_backend_dev_name", ctypes.c_char_p, [vp]),
            (cpu, "ggml_backend_cpu_reg", vp, []),
            (cpu, "ggml_backend_cpu_init", vp, []),
            (cpu, "ggml_backend_cpu_set_n_threads", None, [vp, ctypes.c_int]),
        ]
        for owner, name, res, args in decl:
            fn = getattr(owner, name, None)
            if fn is None:
                raise LibGGMLUnavailable(f"symbol {name} missing from {owner._name}")
            fn.restype, fn.argtypes = res, args
        self.base, self.cpu = base, cpu
        self.reg = cpu.ggml_backend_cpu_reg()
        self.dev = base.ggml_backend_reg_dev_get(self.reg, 0)
        self.bufts: dict[str, int] = {self._name(base.ggml_backend_cpu_buffer_type()): base.ggml_backend_cpu_buffer_type()}
        addr = base.ggml_backend_reg_get_proc_address(self.reg, b"ggml_backend_dev_get_extra_bufts")
        if addr:
            arr = _EXTRA_BUFTS(addr)(self.dev)
            i = 0
            while arr and arr[i]:
                self.bufts[self._name(arr[i])] = arr[i]
                i += 1

    def _name(self, buft: int) -> str:
        raw = self.base.ggml_backend_buft_name(buft)
        return raw.decode("ascii", "replace") if raw else "?"


@lru_cache(maxsize=1)
def _backend() -> _Backend:
    return _Backend()


def available() -> dict:
    """Whether libggml's CPU backend loads here, with its version or the reason it does not."""
    try:
        be = _backend()
    except (ImportError, OSError, LibGGMLUnavailable) as e:
        return {"ok": False, "reason": str(e), "version": ""}
    return {"ok": True, "reason": "", "version": be.lib.version}


def observe() -> dict:
    """The CPU backend's compile-time ISA (as kernels.ggml.calls.observe) and its buffer types."""
    from kernels.ggml.calls import observe as ggml_observe

    seen = ggml_observe()
    seen["buffer_types"] = buffer_types()
    return seen


def buffer_types() -> list[str]:
    """The CPU device's buffer types by ggml name: the default ('CPU') first, then the extra ones."""
    return list(_backend().bufts)


def _ctx(be: _Backend, n_tensors: int, graph: bool) -> int:
    size = be.base.ggml_tensor_overhead() * n_tensors + (be.base.ggml_graph_overhead() if graph else 0) + 1024
    ctx = be.base.ggml_init(_InitParams(size, None, True))
    if not ctx:
        raise RuntimeError("ggml_init returned NULL")
    return ctx


def mul_mat(type_name: str, w_bytes: np.ndarray, xs: list[np.ndarray], buffer_type: str = DEFAULT,
            n_threads: int = 1) -> dict:
    """Y = X W^T through ggml_mul_mat for each X in xs (float32 (M, K)), W given as (N, row bytes).

    Returns {'buffer_type', 'supported', 'repacked', 'ys'}: supported is the CPU device's
    answer for a MUL_MAT with W in this buffer type (False: nothing was computed, ys is
    empty), repacked whether the weight's bytes in the buffer differ from w_bytes, ys the
    float32 (M, N) outputs.
    """
    be = _backend()
    lib = be.lib
    if buffer_type not in be.bufts:
        raise ValueError(f"no buffer type {buffer_type!r} here; the CPU device offers {', '.join(be.bufts)}")
    tid = lib.type_id(type_name)
    w = np.ascontiguousarray(w_bytes, dtype=np.uint8)
    n = w.shape[0]
    k = w.shape[1] // lib.type_size(type_name) * lib.block_size(type_name)
    if w.ndim != 2 or lib.row_bytes(type_name, k) != w.shape[1]:
        raise ValueError(f"{type_name}: weight bytes {w.shape} are not whole rows of blocks")
    base = be.base
    out: dict = {"buffer_type": buffer_type, "supported": False, "repacked": False, "ys": []}
    ctx_w = _ctx(be, 1, False)
    buf_w = backend = None
    try:
        wt = base.ggml_new_tensor_2d(ctx_w, tid, k, n)
        buf_w = base.ggml_backend_alloc_ctx_tensors_from_buft(ctx_w, be.bufts[buffer_type])
        if not buf_w:
            raise RuntimeError(f"could not allocate the weight in {buffer_type}")
        nbytes = base.ggml_nbytes(wt)
        if nbytes != w.nbytes:
            raise RuntimeError(f"ggml_nbytes(W) = {nbytes}, given {w.nbytes} bytes")
        backend = be.cpu.ggml_backend_cpu_init()
        be.cpu.ggml_backend_cpu_set_n_threads(backend, int(n_threads))
        weight_set = False
        for x in xs:
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != k:
                raise ValueError(f"X must be float32 (M, {k}), got {x.shape}")
            m = x.shape[0]
            ctx = _ctx(be, 4, True)
            buf_x = None
            try:
                xt = base.ggml_new_tensor_2d(ctx, _F32, k, m)
                yt = base.ggml_mul_mat(ctx, wt, xt)
                gf = base.ggml_new_graph(ctx)
                base.ggml_build_forward_expand(gf, yt)
                buf_x = base.ggml_backend_alloc_ctx_tensors_from_buft(ctx, be.bufts[DEFAULT])
                if not buf_x:
                    raise RuntimeError("could not allocate X and Y in the CPU buffer type")
                if not base.ggml_backend_dev_supports_op(be.dev, yt):
                    return out  # not supported: llama.cpp would not place this weight here
                out["supported"] = True
                if not weight_set:
                    base.ggml_backend_tensor_set(wt, w.ctypes.data, 0, w.nbytes)
                    held = ctypes.string_at(base.ggml_get_data(wt), w.nbytes)
                    out["repacked"] = held != w.tobytes()
                    weight_set = True
                base.ggml_backend_tensor_set(xt, x.ctypes.data, 0, x.nbytes)
                status = base.ggml_backend_graph_compute(backend, gf)
                if status != 0:
                    raise RuntimeError(f"ggml_backend_graph_compute returned status {status}")
                y = np.empty((m, n), dtype=np.float32)
                base.ggml_backend_tensor_get(yt, y.ctypes.data, 0, y.nbytes)
                out["ys"].append(y)
            finally:
                if buf_x:
                    base.ggml_backend_buffer_free(buf_x)
                base.ggml_free(ctx)
        return out
    finally:
        if backend:
            base.ggml_backend_free(backend)
        if buf_w:
            base.ggml_backend_buffer_free(buf_w)
        base.ggml_free(ctx_w)
