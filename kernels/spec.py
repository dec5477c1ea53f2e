"""A kernel's conformance spec, declared beside its adapter (in the manner of PyTorch's OpInfo).

One record says everything the generic conformance module (conformance/test_specs.py) needs to
judge a kernel: the adapter function to call, the registered GEMM semantics it must meet
(oracle/gemm/semantics.py), how the API's arguments map onto the semantics' logical operands,
which caller layouts (kernels/layouts.py) the API accepts, and its threading, output-buffer,
determinism and modelling claims. Names are validated against the registries when the spec is
registered, so a misspelt semantics or layout is an error, not a silently skipped check.

    SPEC = register_spec(KernelSpec(
        kernel="torch.int_mm", call="int_mm_view", semantics="w8a8.int32_wrap",
        args=("a", "b.T"), layouts={"a": ACTIVATION_LAYOUTS, "b.T": WEIGHT_LAYOUTS}, threads=True, out_buffer=True))

The adapter function receives one `View` per activation or weight matrix (".T": the logical
operand's transpose, as the API orients it), plain arrays for the rest (codes, scales, zero
points, bias) and a Python scalar for a 0-d operand (a group size, a scale, a zero point), plus `threads=` and `out=`
where claimed, and returns the result array (the output buffer's whole storage when `out` was
given, so the suite can check its guard bytes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kernels.layouts import LAYOUTS, make
from kernels.registry import find, kernels

__all__ = ["KernelSpec", "register_spec", "specs", "spec_for", "ACTIVATION_LAYOUTS", "WEIGHT_LAYOUTS", "WORKERS", "VIEW_ROLES",
           "layouts_for"]

# what a caller can hand each kind of argument: a broadcast or a row of a batch is an activation's lot
ACTIVATION_LAYOUTS = tuple(LAYOUTS)
WEIGHT_LAYOUTS = ("dense", "transposed", "row_pitch", "offset")

# the operands that travel as caller views (the others are a kernel's own storage: codes, scales)
VIEW_ROLES = ("a", "b", "x", "w")

# worker purposes a spec may name (conformance/test_specs.py maps each to the worker that serves it)
WORKERS = ("", "triton")


def worker_purpose(kernel: str) -> str:
    """The worker that runs `kernel`: the Triton harness's for a Triton kernel (named triton.*), else the
    session's; a spec's `worker` must agree, so a failure retires the process that ran the kernel."""
    return "triton" if kernel.startswith("triton.") else ""

_SPECS: dict[str, "KernelSpec"] = {}


@dataclass(frozen=True)
class KernelSpec:
    """kernel: the KernelInfo name; call: the adapter function (in the kernel's module);
    semantics: an oracle.gemm.semantics name; args: the API's arguments in order, each a logical
    operand of the semantics' signature, ".T" where the API takes its transpose; layouts: per 2-D
    argument, the layouts the API accepts (every other layout a caller could pass is judged
    UNSUPPORTED, never silently skipped; an argument not named takes "dense" only);
    threads: the call takes threads= and must give the same bytes with 1 and N threads;
    out_buffer: the call takes out= (a View) and must write nothing outside it; dtypes: activation
    dtypes of a float signature; groups: the group sizes a grouped-weight signature is drawn at;
    k_tail: K need not be a whole number of groups (the last group is partial); outside: case
    families outside the API's contract, each with the upstream statement that puts it there
    (judged UNSUPPORTED with that reason, never dropped); modelled: the semantics' prediction is this kernel's arithmetic,
    so a float output must equal it bit for bit (a miss is a FAIL, not a fall-back to the bound);
    source: where upstream states the API's contract; worker: the worker that must run the call, by
    purpose ("" the session's; "triton": conformance/triton_harness's, whose environment chooses the
    Triton interpreter or the GPU before triton is first imported); check_args: what the adapter's
    `available()` takes to answer for this kernel alone, where one adapter serves several (an engine)."""

    kernel: str
    call: str
    semantics: str
    args: tuple[str, ...]
    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    threads: bool = False
    out_buffer: bool = False
    dtypes: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()
    k_tail: bool = False
    outside: dict[str, str] = field(default_factory=dict)
    modelled: bool = False
    source: str = ""
    worker: str = ""
    check_args: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        info = find(self.kernel)
        assert info is not None  # checked at registration
        return info.module

    def accepts(self, arg: str, layout: str) -> bool:
        return layout in self.layouts.get(arg, ("dense",))

    def operand(self, arg: str) -> tuple[str, bool]:
        """(logical operand, transposed) of an API argument."""
        return (arg[:-2], True) if arg.endswith(".T") else (arg, False)

    def arguments(self, operands: dict, layouts: dict[int, str] | None = None) -> list:
        """The API's arguments for a case's operands: a View per activation or weight matrix (dense
        unless `layouts` maps its position to another layout), a Python scalar for a 0-d operand (an
        int group size or zero point, a float scale: the operand's value exactly), arrays otherwise."""
        out = []
        for i, arg in enumerate(self.args):
            name, transposed = self.operand(arg)
            v = operands[name]
            if name in VIEW_ROLES:
                v = make(v.T if transposed else v, (layouts or {}).get(i, "dense"))
            elif v.ndim == 0:
                v = v.item()
            out.append(v)
        return out


def _validate(s: KernelSpec) -> None:
    from oracle.gemm.semantics import SIGNATURES, get

    if find(s.kernel) is None:
        raise ValueError(f"spec for unregistered kernel {s.kernel!r}")
    sem = get(s.semantics)
    roles = SIGNATURES[sem.signature]
    bad = [a for a in s.args if s.operand(a)[0] not in roles]
    if bad:
        raise ValueError(f"{s.kernel}: arguments {bad} are not operands of {sem.signature} ({', '.join(roles)})")
    if ("group" in roles) != bool(s.groups):
        raise ValueError(f"{s.kernel}: groups {s.groups} for signature {sem.signature} (grouped signatures need them)")
    if s.worker not in WORKERS or s.worker != worker_purpose(s.kernel):
        raise ValueError(f"{s.kernel}: worker {s.worker!r}; known: {', '.join(map(repr, WORKERS))}, and a Triton "
                         "kernel (triton.*) runs in the 'triton' worker, every other in ''")
    for arg, lays in s.layouts.items():
        unknown = [lay for lay in lays if lay not in LAYOUTS]
        if arg not in s.args or unknown or "dense" not in lays:
            raise ValueError(f"{s.kernel}: layouts {arg}: {lays} (arguments: {', '.join(s.args)}; layouts: "
                             f"{', '.join(LAYOUTS)}; 'dense' required)")


def register_spec(s: KernelSpec) -> KernelSpec:
    """Validate and add a spec (one per kernel)."""
    _validate(s)
    if s.kernel in _SPECS and _SPECS[s.kernel] != s:
        raise ValueError(f"spec for {s.kernel!r} registered twice")
    _SPECS[s.kernel] = s
    return s


def layouts_for(position: int) -> tuple[str, ...]:
    """The layouts a caller can pass as the argument at `position` (the first is the activation)."""
    return ACTIVATION_LAYOUTS if position == 0 else WEIGHT_LAYOUTS


def spec_for(module: str, call: str) -> KernelSpec | None:
    """The spec whose call is `module.call`, if any."""
    return next((s for s in specs() if s.module == module and s.call == call), None)


def specs() -> list[KernelSpec]:
    """Every registered spec, by kernel name (importing the adapters registers them)."""
    kernels()
    return [_SPECS[k] for k in sorted(_SPECS)]
