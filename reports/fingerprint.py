"""`qoracle fingerprint --kernel NAME`: which named conventions a kernel really implements.

Runs the kernel's probe set (kernels/fingerprints.py) in the isolating worker and compares each
output with every candidate's prediction. A candidate matches by "bytes" when the output is
byte-identical to its prediction (quantizer bytes, or a GEMM's bit-exact model), or by "bound"
when no candidate matches by bytes, the output lies within this candidate's error bound and
every other candidate's output lies outside its own. Candidates whose predictions are
byte-identical cannot be told apart by the probe: the table says so, and such a tie never
counts against the kernel.

The verdict compares the matches with the adapter's declaration (KernelInfo.conventions): it
passes when, in every case, the declared conventions the call selects match and no undeclared
candidate with a distinct prediction does.

Numerics cases (kernels/probes_numerics.py: accumulator, order, output cast, subnormals) read
hypotheses instead: each is judged on its own, a family (any summation order) matching every
output inside its bound and on its grid, and the case reports every hypothesis the output is
consistent with, or none. Such a case counts against the kernel only where the adapter's notes
and oracle model state hypotheses (its `selects`, any one of which may hold: the int16 pairs of a
host without VNNI, the exact int32 sums of one with it) and the output is consistent with none.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.fingerprints import Candidate, Case, ProbeSet, probe_set
from kernels.isa import knobs_for
from kernels.registry import get
from kernels.worker import Worker

__all__ = ["Row", "CaseResult", "Fingerprint", "fingerprint", "render", "markdown", "main", "main_all"]


@dataclass
class Row:
    candidate: str
    registered: bool
    matched: str  # "bytes", "bound" or ""
    expected: bool
    same_as: list[str]
    first_diff: str


@dataclass
class CaseResult:
    case: str
    rows: list[Row]
    selects: tuple[str, ...] | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)
    trait: str = ""

    @property
    def consistent(self) -> list[str]:
        """The candidates this case's output matched (a numerics case's reading)."""
        return [r.candidate for r in self.rows if r.matched]


@dataclass
class Fingerprint:
    kernel: str
    separates: str
    declared: tuple[str, ...]
    cases: list[CaseResult]
    unavailable: str = ""
    mutant: str = ""

    @property
    def matched(self) -> list[str]:
        """The conventions matched in every convention case that applies to them (a case whose call
        selects other conventions, such as reduce_range=True for the plain one, does not apply)."""
        verdicts: dict[str, list[bool]] = {}
        for c in self.cases:
            if c.trait:
                continue
            for r in c.rows:
                if c.selects is None or r.candidate in c.selects:
                    verdicts.setdefault(r.candidate, []).append(bool(r.matched))
        return sorted(n for n, v in verdicts.items() if all(v))

    @property
    def readings(self) -> dict[str, list[str]]:
        """Per numerics trait, the hypotheses consistent with every case of that trait that
        answered (a case that did not answer reads nothing); empty list: none."""
        out: dict[str, list[str]] = {}
        for c in self.cases:
            if not c.trait:
                continue
            seen = c.consistent if not c.error else []
            out[c.trait] = [n for n in out[c.trait] if n in seen] if c.trait in out else seen
        return out

    @property
    def not_probed(self) -> list[str]:
        seen = {r.candidate for c in self.cases for r in c.rows}
        return [d for d in self.declared if d not in seen]

    @property
    def ok(self) -> bool:
        return not self.unavailable and bool(self.cases) and not any(c.problems or c.error for c in self.cases)


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _first_diff(y: np.ndarray, pred: np.ndarray) -> str:
    y, pred = np.atleast_1d(y), np.atleast_1d(pred)
    if y.shape != pred.shape or y.dtype != pred.dtype:
        return f"output {y.dtype}{list(y.shape)} vs predicted {pred.dtype}{list(pred.shape)}"
    width = y.dtype.itemsize
    ub = np.ascontiguousarray(y).view(f"u{width}") if width in (1, 2, 4, 8) else y
    pb = np.ascontiguousarray(pred).view(f"u{width}") if width in (1, 2, 4, 8) else pred
    where = np.argwhere(ub != pb)
    idx = tuple(int(i) for i in where[0])
    return f"{len(where)} differ; first at {list(idx)}: kernel {y[idx].item()!r}, predicted {pred[idx].item()!r}"


def _within(y: np.ndarray, c: Candidate) -> bool:
    if c.exact is None or c.bound is None or np.shape(y) != np.shape(c.exact):
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(np.asarray(y, np.float64) - c.exact) <= c.bound))


def _on_grid(y: np.ndarray, dtype: str) -> bool:
    """Whether every value of y is representable in `dtype` (fp16, bf16, fp32)."""
    from kernels.probes_numerics import round_to

    y64 = np.asarray(y, np.float64)
    return bool(np.all(round_to(y64, dtype) == y64))


def consistent(y: np.ndarray, c: Candidate) -> bool:
    """Whether output y is the candidate's prediction or, for a family, one of its members."""
    if _same_bytes(y, c.predicted):
        return True
    return c.family and _within(y, c) and (not c.grid or _on_grid(y, c.grid))


def judge_case(case: Case, y: np.ndarray, declared: tuple[str, ...]) -> CaseResult:
    """Match one output against the case's candidates and list what disagrees with the declaration
    (for a numerics case, with the hypotheses its call states)."""
    names = [c.name for c in case.candidates]
    expected = set(case.selects if case.selects is not None else [n for n in names if n in declared])
    exact = {c.name for c in case.candidates if _same_bytes(y, c.predicted)}
    family = {c.name for c in case.candidates if c.family and consistent(y, c)}
    inside = {c.name for c in case.candidates if not c.family and _within(y, c)}
    by_bound = family | (inside if not exact and len(inside) == 1 else set())
    rows = []
    for c in case.candidates:
        same = [o.name for o in case.candidates if o is not c and _same_bytes(o.predicted, c.predicted)]
        how = "bytes" if c.name in exact else "bound" if c.name in by_bound else ""
        rows.append(Row(c.name, c.registered, how, c.name in expected, same, "" if how else _first_diff(y, c.predicted)))
    res = CaseResult(case.name, rows, case.selects, trait=case.trait)
    flagged: set[str] = set()
    if case.trait:
        if expected and not any(r.matched for r in rows if r.expected):
            res.problems.append(f"expected {' or '.join(n for n in names if n in expected)} did not match")
        return res
    for r in rows:
        if r.expected and not r.matched:
            res.problems.append(f"declared {r.candidate} did not match")
        if r.matched and not r.expected and not (set(r.same_as) & (expected | flagged)):
            tied = f" (the probe cannot tell it from {', '.join(r.same_as)})" if r.same_as else ""
            res.problems.append(f"undeclared {r.candidate} matched{tied}")
            flagged.add(r.candidate)
    return res


def _pick(value, output):
    """The compared part of a call's result: the value, value[key], or a path of keys and indices."""
    if output is None:
        return value
    for key in (output if isinstance(output, tuple) else (output,)):
        value = value[key]
    return value


def _worker_for(probes: ProbeSet, worker, triton_worker, env: dict[str, str]):
    """(the worker to call, whether this run owns it): Triton probe sets run in a worker of their
    own (kernels/triton/runtime.py picks the interpreter there before anything imports triton)."""
    given = triton_worker if probes.triton else worker
    if given is not None:
        return given, False
    return Worker(env), True


def fingerprint(kernel: str, worker: Worker | None = None, mutant: str | None = None,
                triton_worker: Worker | None = None) -> Fingerprint:
    """Run `kernel`'s probe set (natively, or with a deliberately wrong `mutant` standing in for its
    adapter). `worker` (anything with Worker's `call`) runs the calls; `triton_worker` those of a
    Triton probe set, which never share the plain worker."""
    info = get(kernel)
    probes = probe_set(kernel)
    route = {}
    env = knobs_for("native")
    if mutant:
        from kernels.mutants import ENV, get as get_mutant

        m = get_mutant(mutant)
        route = {m.target: "kernels.mutants.active"}
        env[ENV] = m.name
    w, own = _worker_for(probes, worker, triton_worker, env)
    fp = Fingerprint(kernel, probes.separates, info.conventions, [], mutant=mutant or "")
    try:
        avail = w.call(probes.module, probes.check, *probes.available_args)
        if not avail.ok or not avail.value["ok"]:
            fp.unavailable = avail.value["reason"] if avail.ok else f"{avail.status}: {avail.detail[:300]}"
            return fp
        for case in probes.build():
            out = w.call(route.get(case.module, case.module), case.func, *case.args, **case.kwargs)
            if not out.ok:
                fp.cases.append(CaseResult(case.name, [], case.selects, f"{out.status}: {out.detail.strip()[:300]}",
                                           trait=case.trait))
                continue
            fp.cases.append(judge_case(case, _pick(out.value, case.output), info.conventions))
    finally:
        if own:
            w.close()
    return fp


def render(fp: Fingerprint) -> str:
    """The table: per case, each candidate, whether it matched (and how), or where it first differs."""
    head = f"kernel {fp.kernel}" + (f" with mutant {fp.mutant}" if fp.mutant else "")
    lines = [head, f"probes separate: {fp.separates}", f"declared: {', '.join(fp.declared) or '(none)'}"]
    if fp.unavailable:
        return "\n".join(lines + [f"UNAVAILABLE: {fp.unavailable}"]) + "\n"
    for c in fp.cases:
        lines.append(f"\n[{c.case}]")
        if c.error:
            lines.append(f"  the kernel did not answer: {c.error}  (matches none)")
            continue
        width = max(len(r.candidate) for r in c.rows) + 4
        head = "expected" if c.trait else "declared"
        lines.append(f"  {'hypothesis' if c.trait else 'candidate':{width}s}{head:9s}{'matched':9s}detail")
        for r in c.rows:
            name = r.candidate + ("" if r.registered else " *")
            detail = "; ".join(filter(None, [f"same prediction as {', '.join(r.same_as)}" if r.same_as else "", r.first_diff]))
            lines.append(f"  {name:{width}s}{'yes' if r.expected else '-':9s}{r.matched or 'no':9s}{detail}")
        if c.trait:
            lines.append(f"  reads: {', '.join(c.consistent) or 'none'}")
        for p in c.problems:
            lines.append(f"  !! {p}")
    lines.append("\n* a variant of a registered convention with one choice changed, or a numerics hypothesis")
    if fp.not_probed:
        lines.append(f"declared but not probed: {', '.join(fp.not_probed)}")
    if any(not c.trait for c in fp.cases):
        lines.append(f"matches: {', '.join(fp.matched) or 'none'}")
    for trait, names in fp.readings.items():
        lines.append(f"{trait}: {', '.join(names) or 'none'}")
    lines.append("verdict: " + ("the declared conventions and stated numerics match" if fp.ok
                                else "DISAGREES with the declaration"))
    return "\n".join(lines) + "\n"


_COLUMNS = (("accumulator", ("accumulator",)), ("order", ("order",)),
            ("rounding", ("output cast", "code rounding", "zero-point rounding", "requantization rounding",
                          "scale application")),
            ("epilogue", ("epilogue",)), ("subnormals", ("subnormals", "fp16 subnormal scales")))


def _column(readings: dict[str, list[str]], name: str, prefixes: tuple[str, ...]) -> str:
    """One table cell: the traits starting with a prefix, merged where they are all the column's own
    trait (a path or type of it) and read alike."""
    traits = {t: ", ".join(r) or "none" for t, r in readings.items() if t.startswith(prefixes)}
    if not traits:
        return "-"
    if len(set(traits.values())) == 1 and all(t.startswith(name) for t in traits):
        return next(iter(traits.values())) + (f" ({len(traits)} cases)" if len(traits) > 1 else "")
    return "; ".join(f"{t}: {r}" for t, r in traits.items())


def markdown(fps: list[Fingerprint]) -> str:
    """A Markdown table of what each kernel read: its conventions and, per numerics trait, the
    hypotheses consistent with the output ("none": no hypothesis; UNAVAILABLE with the reason)."""
    head = ["kernel", "conventions", *(c for c, _ in _COLUMNS), "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fp in fps:
        if fp.unavailable:
            cells = [f"UNAVAILABLE: {fp.unavailable.split('. ')[0]}"] + ["-"] * (len(head) - 2)
        else:
            conv = ", ".join(f"`{m}`" for m in fp.matched) or "none" if any(not c.trait for c in fp.cases) else "-"
            cells = [conv, *(_column(fp.readings, c, p) for c, p in _COLUMNS), "agrees" if fp.ok else "DISAGREES"]
        lines.append("| " + " | ".join([fp.kernel, *cells]) + " |")
    return "\n".join(lines) + "\n"


def main_all(kernels: list[str] | None = None) -> int:
    """Fingerprint every kernel with a probe set (or the named ones) and print the Markdown table;
    0 when each available one agrees with its adapter, else 1."""
    from kernels.fingerprints import probe_sets

    env = knobs_for("native")
    with Worker(env) as w, Worker(env) as tw:
        fps = [fingerprint(k, w, triton_worker=tw) for k in (kernels or probe_sets())]
    print(markdown(fps), end="")
    return 0 if all(fp.ok or fp.unavailable for fp in fps) else 1


def main(kernel: str, mutant: str | None = None) -> int:
    """Print the fingerprint; 0 when it agrees with the declaration, 1 when not, 2 when the kernel is unavailable."""
    fp = fingerprint(kernel, mutant=mutant)
    print(render(fp), end="")
    if fp.unavailable:
        return 2
    return 0 if fp.ok else 1
