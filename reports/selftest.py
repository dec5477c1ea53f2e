"""`qoracle selftest`: run the conformance suite against every mutant (kernels/mutants) and report the kill rate.

One pytest process per mutant, restricted to the mutant's kernels (`--mutant` selects them),
under the derandomized hypothesis profile. A mutant is KILLED when its run fails, and the first
failing test with the first line of its message says which check caught it (read from the
run's --results file). A failure that is no check's verdict (an import error, a broken
test) is an ERROR, not a kill. SURVIVED means every test passed: the suite cannot tell that kernel from
a correct one. UNEXERCISED means no test ran (the kernel is unavailable here); ERROR is a run
that did not finish normally. A baseline run of the same kernels without a mutant comes first:
a kill only counts when the unmutated kernels pass.
"""
from __future__ import annotations

import json
import os
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
    env = {**os.environ, "QORACLE_HYPOTHESIS": "ci"}
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


_VERDICTS = ("FAIL", "CRASHED", "[XPASS(strict)]", "AssertionError: --isa")  # a check's failure, not a broken test


def _first_line(message: str) -> str:
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    return line.removeprefix("Failed: ")


def run_one(name: str, profile: str = "quick", first_failure_only: bool = True, timeout: float = 600) -> MutantRun:
    """Run the suite against one mutant and classify the outcome."""
    with tempfile.TemporaryDirectory(prefix="qoracle-selftest-") as tmp:
        args = ["--profile", profile, "--mutant", name, *(["-x"] if first_failure_only else [])]
        rc, data, out, secs = _pytest(args, os.path.join(tmp, "results.json"), timeout)
    outcomes = data.get("outcomes", {})
    failures = data.get("failures", [])
    if rc == 1 and failures:
        first = failures[0]
        line = _first_line(first["message"])
        if line.startswith(_VERDICTS):
            return MutantRun(name, "KILLED", first["nodeid"], line, outcomes, secs)
        return MutantRun(name, "ERROR", first["nodeid"], f"failed, but not by a verdict: {line}", outcomes, secs)
    if rc == 0:
        ran = outcomes.get("passed", 0) + outcomes.get("xfailed", 0)
        return MutantRun(name, "SURVIVED" if ran else "UNEXERCISED", outcomes=outcomes, seconds=secs,
                         message="" if ran else "no test of its kernels ran here")
    if rc == 5:
        return MutantRun(name, "UNEXERCISED", message="no test selected", seconds=secs)
    return MutantRun(name, "ERROR", message=f"pytest exited {rc}: {out.strip().splitlines()[-1] if out.strip() else ''}",
                     outcomes=outcomes, seconds=secs)


def baseline(kernel_names: list[str], profile: str = "quick", timeout: float = 900) -> tuple[bool, str]:
    """Whether the unmutated suite passes on these kernels (else a kill proves nothing)."""
    with tempfile.TemporaryDirectory(prefix="qoracle-selftest-") as tmp:
        args = ["--profile", profile, *[a for k in kernel_names for a in ("--kernel", k)]]
        rc, data, out, _ = _pytest(args, os.path.join(tmp, "results.json"), timeout)
    if rc == 0:
        return True, ""
    first = (data.get("failures") or [{}])[0]
    return False, f"pytest exited {rc}; first failure {first.get('nodeid', '?')}: {_first_line(first.get('message', out))}"


def run_all(names: list[str], profile: str = "quick", jobs: int = 2, first_failure_only: bool = True,
            progress=None) -> list[MutantRun]:
    """Every named mutant, `jobs` pytest processes at a time, in the order given."""
    def one(n: str) -> MutantRun:
        r = run_one(n, profile, first_failure_only)
        if progress:
            progress(r)
        return r
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, names))


def main(patterns: list[str], profile: str = "quick", jobs: int = 2, json_path: str | None = None,
         check_baseline: bool = True, all_failures: bool = False) -> int:
    """Print each mutant's fate and the kill rate; 0 only when every exercised mutant was killed."""
    import fnmatch

    import kernels.mutants as mutants

    chosen = [m for m in mutants.mutants() if not patterns or any(fnmatch.fnmatchcase(m.name, p) for p in patterns)]
    if not chosen:
        print(f"no mutant matches {patterns}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    print(f"qoracle selftest: {len(chosen)} mutants, {profile} profile, {jobs} at a time")
    if check_baseline:
        ok, why = baseline(sorted({k for m in chosen for k in m.kernels}), profile)
        if not ok:
            print(f"baseline: the unmutated suite fails on these kernels, so kills would prove nothing: {why}")
            return 2
        print("baseline: the unmutated kernels pass")

    def show(r: MutantRun) -> None:
        where = f"by {r.caught_by}: {r.message}" if r.status == "KILLED" else r.message
        print(f"  {r.status:11s} {r.name:46s} {r.seconds:5.1f} s  {where}", flush=True)

    runs = run_all([m.name for m in chosen], profile, jobs, not all_failures, progress=show)
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
            json.dump({"profile": profile, "kill_rate": rate, "runs": [asdict(r) for r in runs]}, f, indent=1)
    return 0 if exercised and not survived and not errors else 1
