"""`qoracle selftest`: run the conformance suite against every mutant (kernels/mutants) and report the kill rate.

Kills are counted per test, so the kill rate can be measured on any host. A baseline run of the
mutants' kernels without a mutant comes first and records each test's outcome; a test that fails
unmutated on this host (an unregistered upstream defect, a missing feature) proves nothing about
a mutant, so it is excluded from every mutant run (`--deselect`) and listed. Then one pytest
process per mutant, restricted to the mutant's kernels (`--mutant` selects them), under the
default derandomized profile, stopping after five failures: the mutant is KILLED when a test
that passed unmutated fails with a verdict (FAIL, CRASHED, LOAD_FAILED, or an ISA cap
that did not take effect), and that test with the first line of its message says which check
caught it. A failure that is no verdict (an import error, a broken test, or an exception raised
by the mutant's own code, which the suite reports as a refusal) is an ERROR, not a kill. SURVIVED
means every remaining test passed: the suite cannot tell that kernel from a correct one.
UNEXERCISED means no test ran (the kernel is unavailable here).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = ["MutantRun", "run_one", "run_all", "baseline", "main"]


@dataclass
class MutantRun:
    name: str
    status: str  # KILLED | SURVIVED | UNEXERCISED | ERROR
    caught_by: str = ""
    message: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _pytest(args: list[str], results: str, timeout: float) -> tuple[int, dict, str, float]:
    """Run the conformance suite with `args`; (return code, results JSON or {}, output tail, seconds)."""
    env = {k: v for k, v in os.environ.items() if k != "QORACLE_HYPOTHESIS"}  # the fixed case set
    cmd = [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", "--results", results, *args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -1, f"timed out after {timeout:.0f} s: {(e.stdout or b'')[-500:]!r}"
    data = {}
    if os.path.exists(results):
        with open(results, encoding="utf-8") as f:
            data = json.load(f)
    return rc, data, out[-2000:], time.monotonic() - t0


_VERDICTS = ("FAIL", "CRASHED", "LOAD_FAILED", "AssertionError: --isa")  # a check's failure
# a programming error in the mutant's own code (a stale signature, a typo), reported as a refusal: not a verdict
_OWN_EXCEPTION = re.compile(r"the kernel refused an input[^:]*: (TypeError|AttributeError|NameError|UnboundLocalError|"
                            r"ImportError|ModuleNotFoundError)\b")


def _first_line(message: str) -> str:
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    return line.removeprefix("Failed: ")


def run_one(name: str, profile: str = "quick", first_failure_only: bool = True, timeout: float = 600,
            excluded: tuple[str, ...] = ()) -> MutantRun:
    """Run the suite against one mutant, without the `excluded` tests, and classify the outcome."""
    with tempfile.TemporaryDirectory(prefix="qoracle-selftest-") as tmp:
        # a few failures, not one: the first may be a registered defect's test passing under the mutant
        # (XPASS), which is no verdict; the first failure that is one decides
        args = ["--profile", profile, "--mutant", name, *(["--maxfail", "5"] if first_failure_only else []),
                *[a for t in excluded for a in ("--deselect", t)]]
        rc, data, out, secs = _pytest(args, os.path.join(tmp, "results.json"), timeout)
    outcomes = data.get("outcomes", {})
    failures = data.get("failures", [])
    if rc == 1 and failures:
        own = next((f for f in failures if _OWN_EXCEPTION.search(f["message"])), None)
        if own:  # the mutant is broken: whatever else failed proves nothing about the suite
            return MutantRun(name, "ERROR", own["nodeid"], f"the mutant's own code raised: {_first_line(own['message'])}",
                             outcomes, secs)
        kill = next((f for f in failures if _first_line(f["message"]).startswith(_VERDICTS)), None)
        if kill:
            return MutantRun(name, "KILLED", kill["nodeid"], _first_line(kill["message"]), outcomes, secs)
        first = failures[0]
        return MutantRun(name, "ERROR", first["nodeid"], f"failed, but not by a verdict: {_first_line(first['message'])}",
                         outcomes, secs)
    if rc == 0:
        ran = outcomes.get("passed", 0) + outcomes.get("xfailed", 0)
        return MutantRun(name, "SURVIVED" if ran else "UNEXERCISED", outcomes=outcomes, seconds=secs,
                         message="" if ran else "no test of its kernels ran here")
    if rc == 5:
        return MutantRun(name, "UNEXERCISED", message="no test selected", seconds=secs)
    return MutantRun(name, "ERROR", message=f"pytest exited {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}",
                     outcomes=outcomes, seconds=secs)


def baseline(kernel_names: list[str], profile: str = "quick", timeout: float = 1200) -> dict[str, str]:
    """The unmutated suite's failing tests on these kernels: {nodeid: first line of why}.

    Raises RuntimeError when the run itself did not finish (no per-test outcomes to go by)."""
    with tempfile.TemporaryDirectory(prefix="qoracle-selftest-") as tmp:
        args = ["--profile", profile, *[a for k in kernel_names for a in ("--kernel", k)]]
        rc, data, out, _ = _pytest(args, os.path.join(tmp, "results.json"), timeout)
    if rc not in (0, 1) or "tests" not in data:
        raise RuntimeError(f"the baseline run did not finish (pytest exited {rc}): {out.strip()[-500:]}")
    why = {f["nodeid"]: _first_line(f["message"]) for f in data.get("failures", [])}
    return {t: why.get(t, o) for t, o in data["tests"].items() if o.startswith("failed")}


def run_all(names: list[str], profile: str = "quick", jobs: int = 2, first_failure_only: bool = True,
            progress=None, excluded: tuple[str, ...] = ()) -> list[MutantRun]:
    """Every named mutant, `jobs` pytest processes at a time, in the order given."""
    def one(n: str) -> MutantRun:
        r = run_one(n, profile, first_failure_only, excluded=excluded)
        if progress:
            progress(r)
        return r
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, names))


def main(patterns: list[str], profile: str = "quick", jobs: int = 2, json_path: str | None = None,
         check_baseline: bool = True, all_failures: bool = False) -> int:
    """Print each mutant's fate and the kill rate; non-zero only when a mutant survived or a mutant run
    broke (a kill that proves nothing), 2 for a usage error."""
    import fnmatch

    import kernels.mutants as mutants

    chosen = [m for m in mutants.mutants() if not patterns or any(fnmatch.fnmatchcase(m.name, p) for p in patterns)]
    if not chosen:
        print(f"no mutant matches {patterns}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    print(f"qoracle selftest: {len(chosen)} mutants, {profile} profile, {jobs} at a time")
    excluded: dict[str, str] = {}
    if check_baseline:
        excluded = baseline(sorted({k for m in chosen for k in m.kernels}), profile)
        if excluded:
            print(f"baseline: {len(excluded)} test(s) fail on the unmutated kernels here; they are excluded from "
                  "every mutant run (a failure there proves nothing):")
            for t, why in sorted(excluded.items()):
                print(f"  excluded {t}: {why[:160]}")
        else:
            print("baseline: every test of these kernels passes unmutated")

    def show(r: MutantRun) -> None:
        where = f"by {r.caught_by}: {r.message}" if r.status == "KILLED" else r.message
        print(f"  {r.status:11s} {r.name:46s} {r.seconds:5.1f} s  {where}", flush=True)

    runs = run_all([m.name for m in chosen], profile, jobs, not all_failures, progress=show,
                   excluded=tuple(sorted(excluded)))
    killed = [r for r in runs if r.status == "KILLED"]
    survived = [r.name for r in runs if r.status == "SURVIVED"]
    errors = [r.name for r in runs if r.status == "ERROR"]
    unexercised = [r.name for r in runs if r.status == "UNEXERCISED"]
    exercised = len(runs) - len(unexercised)
    rate = len(killed) / exercised if exercised else 0.0
    print(f"kill rate: {len(killed)}/{exercised} exercised mutants ({100 * rate:.1f}%) in {time.monotonic() - t0:.0f} s")
    print(f"survived: {', '.join(survived) or 'none'}")
    if errors:
        print(f"errors: {', '.join(errors)}")
    if unexercised:
        print(f"unexercised (kernel unavailable here): {', '.join(unexercised)}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"profile": profile, "kill_rate": rate, "excluded": excluded,
                       "runs": [asdict(r) for r in runs]}, f, indent=1)
    return 1 if survived or errors else 0


def _example(m) -> tuple[tuple, dict, object]:
    """A typical call of the mutant's target function (random normal data, common shapes) and a decoder
    of its result to floats (quantizer bytes are dequantized by the real kernel)."""
    import dataclasses

    import ml_dtypes
    import numpy as np

    import oracle
    import oracle.conventions as conventions
    from conformance import families
    from kernels.mutants import real
    from kernels.spec import spec_for

    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((4, 256)).astype(f32)
    w = rng.standard_normal((32, 256)).astype(f32)
    i8 = lambda *s: rng.integers(-128, 128, s, dtype=np.int8)  # noqa: E731
    ident = lambda v: np.asarray(v, np.float64)  # noqa: E731
    fn = m.func
    spec = spec_for(m.target, fn)
    if spec is not None:  # a spec's call: its largest random case, dense operands
        case = families.largest_random(spec)
        return tuple(spec.arguments(case.operands)), {}, lambda v: ident(np.asarray(v, f32))
    if m.target == "kernels.ggml.mul_mat":  # q4_0 weights in the repacking buffer type where it exists
        from kernels.ggml.mul_mat import buffer_types

        extra = [b for b in buffer_types() if b != "CPU"]
        return ("q4_0", oracle.quantize(w, "q4_0"), [x]), dict(buffer_type=(extra or ["CPU"])[0]), \
            lambda v: ident(v["ys"][0])
    if m.target == "kernels.ggml.calls":
        t = "q8_0" if "q8_0" in m.name else "q4_0"
        back = lambda v: ident(real(m.target, "dequantize")(v, t, 256))  # noqa: E731
        if fn == "quantize" or fn == "from_float":
            return (x, t), {}, back
        if fn == "dequantize":
            return (oracle.quantize(x, t), t, 256), {}, ident
        return ("q4_0", 256, oracle.quantize(w[:4], "q4_0"), oracle.quantize(x, "q8_0.x86")), {}, ident
    if fn == "int_mm" or fn == "int_matmul":
        return (i8(4, 256), i8(256, 32)), {}, ident
    if fn == "int_scaled_matmul":
        return (i8(4, 256), i8(256, 32), (rng.random(4) * 1e-3 + 1e-4).astype(f32)), {}, ident
    if fn == "int4pack_mm":
        conv = dataclasses.replace(conventions.get("tinygemm.torchao"), group_size=32)
        qw = conv.quantize(w)
        return (x, qw.codes, conv.pack(qw)["scales_and_zeros"].astype(f32), 32), {}, lambda v: ident(v["y"])
    if fn == "int8pack_mm":
        return (x[:1].astype(ml_dtypes.bfloat16), i8(32, 256), (rng.random(32) * 0.01).astype(ml_dtypes.bfloat16)), \
            {}, lambda v: ident(np.asarray(v, f32))
    if fn == "dyn_quant_matmul":
        conv = dataclasses.replace(conventions.get("torch.dyn_quant_4bit"), group_size=32)
        qw = conv.quantize(w)
        xz = x.copy()
        xz[1] = 0  # a padding token
        return (xz, conv.pack(qw)["weight"], qw.scales, 32), {}, lambda v: ident(v["y"])
    if fn == "qlinearmatmul":  # u8 x s8 (K, N), requantized to u8 around zero point 128
        a, b = rng.integers(0, 256, (4, 256), dtype=np.uint8), rng.integers(-64, 65, (256, 32), dtype=np.int8)
        return (a, f32(0.02), np.uint8(128), b, f32(0.01), np.int8(0), f32(0.5), np.uint8(128)), {}, \
            lambda v: ident(v["y"])
    if fn == "matmulnbits":
        conv = dataclasses.replace(conventions.get("ort.matmulnbits.int4.asym"), group_size=32)
        qw = conv.quantize(w[:, :240])
        p = conv.pack(qw)
        return (x[:, :240], p["weight"], p["scales"], p.get("zeros")), \
            dict(k=240, n=32, bits=4, block=32, accuracy_level=0), ident
    if fn == "woqgemm":
        asym = "zero_point" in m.name
        codes = rng.integers(-8, 8, (32, 256)).astype(np.int8)
        scales = (rng.random((32, 8)) * 0.1 + 1e-3).astype(f32)
        zeros = rng.integers(-8, 8, (32, 8)).astype(np.int8) if asym else None
        return (x, codes, scales, zeros, rng.standard_normal(32).astype(f32)), dict(bits=4, group_size=32), ident
    if fn == "woqgemm_s8":
        return (x, rng.integers(-63, 64, (32, 256)).astype(np.int8), np.full(32, 0.01, f32), None), {}, ident
    if fn == "gemv":  # the Triton int4 GEMV, ESIMD layout, M = 1, K split in 4 (interpreter without a GPU)
        conv = conventions.get("esimd.int4_gemv")
        p = conv.pack(conv.quantize(w))
        cfg = dict(BLOCK_M=1, BLOCK_N=16, BLOCK_K=64, SPLIT_K=4, num_warps=4, DEQ_FMA=0)
        return (x[:1].astype(np.float16), p["weight"], p["scales"]), dict(layout="esimd", k=256, out="fp32",
                                                                         config=cfg), ident
    if fn == "a16w4":  # gemlite's A16W4 GEMV (needs a GPU)
        return (x[:1].astype(np.float16), rng.integers(0, 16, (32, 256), dtype=np.uint8),
                (rng.standard_normal((32, 2)) * 0.05).astype(np.float16)), dict(group_size=128), ident
    raise ValueError(f"no example call for {m.target}.{fn}")


def mean_relative_errors() -> list[tuple[str, float]]:
    """Each mutant's mean relative error mean|y_mutant - y| / mean|y| against the real kernel's y on the
    same typical inputs: the metric of upstream tests that accept anything under 5%.

    Runs the kernels in this process (a documentation tool, not a judged run).
    """
    import numpy as np

    import kernels.mutants as mutants
    from kernels.mutants import real

    out = []
    for m in mutants.mutants():
        if m.func == "available":  # a library that does not load has no output to compare
            continue
        try:
            args, kw, decode = _example(m)
            right = decode(real(m.target, m.func)(*args, **kw))
            wrong = decode(m.impl(*args, **kw))
        except Exception as e:  # a kernel this machine cannot run (gemlite without a GPU), a refusing mutant, no example: no figure
            print(f"{m.name}: not measured here ({type(e).__name__}: {str(e)[:120]})", file=sys.stderr)
            continue
        with np.errstate(all="ignore"):
            out.append((m.name, float(np.mean(np.abs(wrong - right)) / np.mean(np.abs(right)))))
    return out


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    for name, mre in mean_relative_errors():
        print(f"{name:46s} {100 * mre:10.4f} %  {'passes' if mre < 0.05 else 'fails'} a 'mean relative error < 5%' test")
