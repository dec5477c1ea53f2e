"""Worker side: where the project's Triton kernels run (GPU natively, else the CPU interpreter).

Triton reads TRITON_INTERPRET when a kernel is decorated, so the choice is made here, before any
kernel module imports triton: native on a CUDA device when torch sees one, otherwise the
interpreter (numpy semantics, one program instance at a time) on CPU tensors. The test process
starts a dedicated worker with the same environment (conformance/triton_harness.py), so a triton
imported earlier by another adapter cannot have fixed the mode first.
"""
from __future__ import annotations

import importlib.metadata
import os

import ml_dtypes
import numpy as np

from kernels.loading import import_failure

__all__ = ["interpreted", "row_block", "device", "available", "observe", "to_torch", "to_numpy", "TORCH_DTYPES"]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())




def _numpy2_index_shim() -> None:
    """The triton 3.6 interpreter holds scalars as 1-element arrays and gives them `__index__` by
    int(array), which numpy >= 2.4 refuses for ndim > 0 (so `range(K)` over a kernel argument raises
    TypeError); re-set it to read the one element. Applied only in interpreter mode."""
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_qoracle_shim", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._qoracle_shim = True
    interpreter._patch_lang_tensor = patched


def _bf16_widening_shim() -> None:
    """The triton 3.6 interpreter widens bf16 to fp32 through a generic converter (`_convert_float`)
    that renormalizes a subnormal bf16 and then clamps its exponent at 0, so 2^-133 becomes 2^-127
    (a GPU's widening is exact: the bf16 bits are fp32's top half). Widening is the same bits
    shifted by 16; every other conversion keeps the interpreter's code. Applied only in
    interpreter mode (docs/findings.md)."""
    from triton import language as tl
    from triton.runtime import interpreter

    original = interpreter._convert_float
    if getattr(original, "_qoracle_shim", False):
        return

    def patched(data, src, dst, rounding_mode):
        if src == tl.bfloat16 and dst == tl.float32:
            return (np.frombuffer(data.tobytes(), np.uint16).astype(np.uint32) << 16).reshape(data.shape)
        return original(data, src, dst, rounding_mode)

    patched._qoracle_shim = True
    interpreter._convert_float = patched


def _patch_once_shim() -> None:
    """The triton 3.6 interpreter re-patches every triton.language builtin (inspect.getmembers over
    the module, a lambda per builtin) on each call of a @triton.jit helper from a kernel, although
    the launch already patched them: a third of an interpreted launch's time. Inside a launch, a
    helper whose language modules the launch has patched is called as is; values are unchanged
    (the same builder, whose builtins stay patched until the launch restores them). A helper
    seeing a module the launch has not patched still patches it, as before."""
    from triton.runtime import interpreter

    original = interpreter._patch_lang
    if getattr(original, "_qoracle_shim", False):
        return
    launch: list[set] = []  # the language modules patched by each launch in progress

    def langs(fn) -> set:
        return {id(v) for v in fn.__globals__.values() if v is interpreter.tl or v is interpreter.tl.core}

    def patched(fn):
        if launch and langs(fn) <= launch[-1]:
            return interpreter._LangPatchScope()
        scope = original(fn)
        if launch:
            launch[-1] |= langs(fn)
        return scope

    grid_call = interpreter.GridExecutor.__call__

    def grid_patched(self, *args, **kwargs):
        launch.append(set())
        try:
            return grid_call(self, *args, **kwargs)
        finally:
            launch.pop()

    patched._qoracle_shim = True
    patched._qoracle_original = original  # a test compares the bytes of both
    grid_patched._qoracle_original = grid_call
    interpreter._patch_lang = patched
    interpreter.GridExecutor.__call__ = grid_patched


if "TRITON_INTERPRET" not in os.environ and not _cuda():
    os.environ["TRITON_INTERPRET"] = "1"
if os.environ.get("TRITON_INTERPRET", "0") == "1":
    try:
        _numpy2_index_shim()
        _bf16_widening_shim()
        _patch_once_shim()
    except ImportError:  # no triton: available() says so
        pass


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (asked of the shared worker before the Triton worker starts)."""
    import torch

    return bool(torch.cuda.is_available())


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def row_block(k: int) -> int:
    """The K step of a one-program-per-row activation quantizer: on the GPU one step up to K = 4096
    (the whole row in registers); in the interpreter 256, where a step costs the same whatever its
    width, so K > 256 still takes the several-step path (a running min/max carried across steps)
    that the GPU takes past 4096."""
    import triton

    return 256 if interpreted() else min(4096, triton.next_power_of_2(max(k, 16)))


def device() -> str:
    """The torch device the kernels take their tensors on."""
    return "cpu" if interpreted() else "cuda"


def available() -> dict:
    """Whether triton imports and has a place to run (never raises)."""
    try:
        import torch
        import triton  # noqa: F401
    except Exception as e:  # an absent or broken install is the reason
        return import_failure(("torch", "triton"), "triton", e)
    if not interpreted() and not torch.cuda.is_available():
        return {"ok": False, "reason": "TRITON_INTERPRET is off and torch sees no CUDA device"}
    if interpreted() and type(triton.language.standard.zeros).__name__ != "InterpretedFunction":
        return {"ok": False, "reason": "triton was imported before TRITON_INTERPRET=1 was set in this process, so "
                                       "its own library functions are compiled ones the interpreter cannot run"}
    return {"ok": True, "reason": "", "version": triton.__version__}


def observe() -> dict:
    """Device name, interpreter or native, triton and torch versions: what really ran."""
    import torch
    import triton

    if interpreted():
        dev, how = "triton-interpreter", "interpreter"
    else:
        dev, how = torch.cuda.get_device_name(0), "native"
        cap = torch.cuda.get_device_capability(0)
        dev = f"{dev} (sm_{cap[0]}{cap[1]})"
    try:
        ao = importlib.metadata.version("torchao")
    except importlib.metadata.PackageNotFoundError:
        ao = ""
    return {"device": dev, "mode": how, "triton": triton.__version__, "torch": torch.__version__, "torchao": ao,
            "isa": f"{dev} triton {triton.__version__}"}


def _torch_dtypes() -> dict:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


TORCH_DTYPES = ("fp32", "fp16", "bf16")


def to_torch(a: np.ndarray, dtype: str | None = None):
    """numpy (ml_dtypes bf16 included) -> a contiguous tensor on the kernel device."""
    import torch

    a = np.ascontiguousarray(a)
    if a.dtype == ml_dtypes.bfloat16:
        t = torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    else:
        t = torch.from_numpy(a.copy())
    if dtype is not None:
        t = t.to(_torch_dtypes()[dtype])
    return t.to(device())


def view_on_device(v):
    """(a caller's view, its whole storage) as tensors on the kernel device: the same memory in the
    interpreter, a copy of the whole storage (guard bytes included) on a GPU, so the kernel sees
    the view's strides and offset as the caller made them."""
    import torch

    from kernels.layouts import View, as_torch

    base = as_torch(View(v.storage, 0, (v.storage.size,), (1,), "dense")).to(device())
    return torch.as_strided(base, v.shape, v.strides, v.offset), base


def to_numpy(t) -> np.ndarray:
    """A tensor -> numpy, bf16 as ml_dtypes.bfloat16 (bits unchanged)."""
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()
