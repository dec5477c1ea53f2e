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

An X given as a caller's view (kernels.layouts.View) is not copied: its storage becomes a
host buffer (ggml_backend_cpu_buffer_from_ptr, as llama.cpp maps a model file), one 1-D
tensor placed at its start (ggml_backend_tensor_alloc), and X the ggml_view_2d of that tensor
with the view's offset and row pitch (nb1), so ggml reads the caller's memory with the
caller's strides. ggml has no element stride other than the type size for X (ggml-cpu.c
ggml_compute_forward_mul_mat: GGML_ASSERT(nb10 == ggml_type_size(src1->type))), and a view's
source must hold M * K elements past its offset (ggml.c ggml_new_tensor_impl), which a
broadcast row (stride 0 over one stored row) does not: ggml_repeat, a copy, is its way there.

`mul_mat_q4_0_view` is the engine's call (SPEC): w4_sym codes and scales packed into q4_0
blocks by the oracle's packer (oracle.gemm.ggml_mul_mat.q4_0_blocks), the weight in the default
buffer type.
"""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from kernels.ggml.calls import _lib
from kernels.ggml.libggml import LibGGMLUnavailable
from kernels.layouts import View
from kernels.spec import KernelSpec, register_spec
from oracle.gemm.ggml_mul_mat import q4_0_blocks

__all__ = ["available", "observe", "buffer_types", "mul_mat", "mul_mat_q4_0_view", "SPEC"]

DEFAULT = "CPU"  # ggml_backend_buft_name(ggml_backend_cpu_buffer_type())
_F32 = 0  # GGML_TYPE_F32

SPEC = register_spec(KernelSpec(
    kernel="ggml.mul_mat", call="mul_mat_q4_0_view", semantics="ggml.mul_mat.q4_0",
    args=("x", "codes", "scales", "group"),
    layouts={"x": ("dense", "row_pitch", "offset", "batch_row")}, threads=True, dtypes=("fp32",), groups=(32,),
    modelled=True,
    source="ggml/src/ggml-cpu/ggml-cpu.c ggml_compute_forward_mul_mat: "
           "'GGML_ASSERT(nb10 == ggml_type_size(src1->type))' (X rows at any pitch, elements contiguous: no "
           "transposed X); ggml/src/ggml.c ggml_new_tensor_impl: "
           "'GGML_ASSERT(view_src == NULL || data_size == 0 || data_size + view_offs <= ggml_nbytes(view_src))' "
           "(a view spans M * K elements of its source: no stride-0 broadcast of one row); ggml-cpu.cpp "
           "ggml_backend_cpu_device_supports_op GGML_OP_MUL_MAT: src1 F32 or the weight's vec_dot_type, so f32 "
           "activations only; block_q4_0 holds QK4_0 = 32 codes (ggml-common.h), so K is whole blocks"))


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
            (base, "ggml_new_tensor_1d", vp, [vp, ctypes.c_int, i64]),
            (base, "ggml_new_tensor_2d", vp, [vp, ctypes.c_int, i64, i64]),
            (base, "ggml_view_2d", vp, [vp, vp, i64, i64, sz, sz]),
            (base, "ggml_mul_mat", vp, [vp, vp, vp]),
            (base, "ggml_new_graph", vp, [vp]),
            (base, "ggml_build_forward_expand", None, [vp, vp]),
            (base, "ggml_nbytes", sz, [vp]),
            (base, "ggml_get_data", vp, [vp]),
            (base, "ggml_backend_buft_name", ctypes.c_char_p, [vp]),
            (base, "ggml_backend_cpu_buffer_type", vp, []),
            (base, "ggml_backend_alloc_ctx_tensors_from_buft", vp, [vp, vp]),
            (base, "ggml_backend_cpu_buffer_from_ptr", vp, [vp, sz]),
            (base, "ggml_backend_tensor_alloc", ctypes.c_int, [vp, vp, vp]),
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


def _caller_x(be: _Backend, ctx: int, x: View) -> tuple[int, int]:
    """(X tensor, its buffer): a ggml view over the caller's own storage with the view's offset and
    row pitch (see the module docstring)."""
    st = x.storage
    if st.dtype != np.float32 or x.strides[1] != 1:
        raise ValueError(f"X must be float32 with contiguous rows (ggml's nb10 is the type size), got {st.dtype} "
                         f"strides {x.strides}")
    if x.offset + x.shape[0] * x.shape[1] > st.size:  # ggml.c would abort: a view is sized as if dense
        raise ValueError("ggml views only storage holding M * K elements past the offset (ggml_new_tensor_impl: "
                         "'data_size + view_offs <= ggml_nbytes(view_src)'): no broadcast row")
    base = be.base
    buf = base.ggml_backend_cpu_buffer_from_ptr(st.ctypes.data, st.nbytes)
    whole = base.ggml_new_tensor_1d(ctx, _F32, st.size)
    if base.ggml_backend_tensor_alloc(buf, whole, st.ctypes.data) != 0:
        base.ggml_backend_buffer_free(buf)
        raise RuntimeError("ggml_backend_tensor_alloc refused the caller's storage")
    return base.ggml_view_2d(ctx, whole, x.shape[1], x.shape[0], x.strides[0] * 4, x.offset * 4), buf


def mul_mat(type_name: str, w_bytes: np.ndarray, xs: list[np.ndarray | View], buffer_type: str = DEFAULT,
            n_threads: int | None = 1) -> dict:
    """Y = X W^T through ggml_mul_mat for each X in xs (float32 (M, K): an array, copied into a
    tensor of its own, or a caller's View, read in place), W given as (N, row bytes);
    n_threads None leaves the CPU backend's default (GGML_DEFAULT_N_THREADS).

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
        if n_threads is not None:
            be.cpu.ggml_backend_cpu_set_n_threads(backend, int(n_threads))
        weight_set = False
        for x in xs:
            caller = isinstance(x, View)
            if not caller:
                x = np.ascontiguousarray(x, dtype=np.float32)
            if len(x.shape) != 2 or x.shape[1] != k:
                raise ValueError(f"X must be float32 (M, {k}), got {x.shape}")
            m = x.shape[0]
            ctx = _ctx(be, 5, True)
            buf_x = buf_caller = None
            try:
                if caller:
                    xt, buf_caller = _caller_x(be, ctx, x)
                else:
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
                if not caller:
                    base.ggml_backend_tensor_set(xt, x.ctypes.data, 0, x.nbytes)
                status = base.ggml_backend_graph_compute(backend, gf)
                if status != 0:
                    raise RuntimeError(f"ggml_backend_graph_compute returned status {status}")
                y = np.empty((m, n), dtype=np.float32)
                base.ggml_backend_tensor_get(yt, y.ctypes.data, 0, y.nbytes)
                out["ys"].append(y)
            finally:
                for buf in (buf_x, buf_caller):
                    if buf:
                        base.ggml_backend_buffer_free(buf)
                base.ggml_free(ctx)
        return out
    finally:
        if backend:
            base.ggml_backend_free(backend)
        if buf_w:
            base.ggml_backend_buffer_free(buf_w)
        base.ggml_free(ctx_w)


def mul_mat_q4_0_view(x: View, codes: np.ndarray, scales: np.ndarray, group: int, *,
                      threads: int | None = None) -> np.ndarray:
    """ggml_mul_mat of a q4_0 weight (w = (codes - 8) * scales, packed by the oracle's q4_0 packer) in the
    default buffer type by the caller's X view, read in place; threads None: the backend's default."""
    if group != 32:
        raise ValueError(f"q4_0 blocks hold 32 codes (QK4_0), not groups of {group}")
    out = mul_mat("q4_0", q4_0_blocks(codes, scales), [x], DEFAULT, threads)
    if not out["supported"]:
        raise RuntimeError(f"the CPU device refuses MUL_MAT q4_0 N={codes.shape[0]} K={codes.shape[1]} in its default "
                           "buffer type")
    return out["ys"][0]
