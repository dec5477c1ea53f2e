"""The main job: run the conformance suite at every ISA level in one pytest session, then write
the certificate.

One session runs every level (conformance/conftest.py parametrizes each test by level, and each
level's cap reaches only the worker process that loads the kernel libraries), so the cases a test
draws are the same at every level and each case has one row with a verdict per level. `jobs`
pytest-xdist processes share the tests. The pytest output goes to `log.txt`; every few seconds one
line says how far the run is (tests done of all, the level, kernel and test running, elapsed time
and an estimate of what is left), read from the progress files the session keeps. The results are
split by level into the certificate's runs (reports/certificate.py), written as certificate.json,
summary.md, report.html and junit.xml.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

from conformance.levels import level_of, parse as parse_levels
from kernels.isa import host_has

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TICK = 20.0  # seconds between progress lines


def _command(levels: list[str], out_dir: str, kernels: list[str], profile: str, extra: list[str],
             jobs: int) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", os.path.join(ROOT, "conformance"), "-q", "-p", "no:cacheprovider",
           "--rootdir", ROOT, "--isa", ",".join(levels), "--profile", profile,
           "--results", os.path.join(out_dir, "results.json"), "--progress-file", os.path.join(out_dir, "progress.json")]
    if jobs > 1 and importlib.util.find_spec("xdist"):
        cmd += ["-n", str(jobs), "--dist", "loadgroup"]  # a test's levels stay in one process (conftest.py)
    for k in kernels:
        cmd += ["--kernel", k]
    return cmd + extra


def split_levels(data: dict, levels: list[str], rc: int, seconds: float) -> dict[str, dict]:
    """One run per level, as the certificate reads them, from a multi-level session's results.

    A level's pytest exit status is 1 where a test at that level failed and 0 otherwise, unless the
    session itself broke (status 2..4: interrupted, internal or usage error), which every level shares."""
    runs = {lv: {"isa_requested": lv, "profile": data.get("profile"), "mutant": data.get("mutant"),
                 "explore_seed": data.get("explore_seed"), "cases": [], "failures": [], "tests": {},
                 "outcomes": {}, "seconds": seconds} for lv in levels}
    for c in data.get("cases", []):
        runs[c["isa_requested"] if c.get("isa_requested") in runs else levels[0]]["cases"].append(c)
    for nodeid, outcome in data.get("tests", {}).items():
        run = runs[level_of(nodeid, levels)]
        run["tests"][nodeid] = outcome
        key = outcome.split(" in ")[0]
        run["outcomes"][key] = run["outcomes"].get(key, 0) + 1
    for f in data.get("failures", []):
        runs[level_of(f["nodeid"], levels)]["failures"].append(f)
    for run in runs.values():
        broken = rc not in (0, 1, 5)
        run["pytest_exit_code"] = rc if broken else (1 if run["failures"] else 0)
    return runs


def run_levels(levels: list[str], out_dir: str, kernels: list[str], profile: str, extra: list[str],
               jobs: int) -> dict[str, dict]:
    """Run `pytest conformance` at every level in one session (output to log.txt); its results, split by level."""
    path, log = os.path.join(out_dir, "results.json"), os.path.join(out_dir, "log.txt")
    for stale in [path, *glob.glob(os.path.join(out_dir, "progress.json*"))]:
        if os.path.exists(stale):
            os.remove(stale)
    t0 = time.monotonic()
    reporter = _Reporter(out_dir, levels)
    ticker = threading.Thread(target=reporter.loop, daemon=True)
    ticker.start()
    try:
        with open(log, "wb") as f:
            rc = subprocess.call(_command(levels, out_dir, kernels, profile, extra, jobs), cwd=ROOT,
                                 stdout=f, stderr=subprocess.STDOUT)
    finally:
        reporter.stop.set()
        for p in glob.glob(os.path.join(out_dir, "progress.json*")):
            os.remove(p)
    data = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    runs = split_levels(data, levels, rc, round(time.monotonic() - t0, 1))
    for lv, run in runs.items():
        print(f"== --isa {lv}: {json.dumps(run['outcomes'])}", flush=True)
    return runs


def progress(out_dir: str) -> tuple[int, int, list[str]]:
    """(tests done, tests in all, tests running) from the progress files of the session's processes."""
    done, total, running = 0, 0, []
    for p in glob.glob(os.path.join(out_dir, "progress.json*")):
        if p.endswith(".tmp"):
            continue
        try:
            with open(p, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue  # being replaced right now
        done, total = done + d["done"], max(total, d["total"])
        running.append(d["running"])
    return done, total, running


class _Reporter:
    """A progress line every few seconds until stopped: how many tests are done, what runs now."""

    def __init__(self, out_dir: str, levels: list[str]) -> None:
        self.out_dir, self.levels = out_dir, levels
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        print(f"== {len(levels)} level(s) in one session: {', '.join(levels)} (log {out_dir}/log.txt)", flush=True)

    def loop(self) -> None:
        while not self.stop.wait(_TICK):
            done, total, running = progress(self.out_dir)
            spent = time.monotonic() - self.t0
            left = f", about {spent * (total - done) / done:.0f} s left" if done and total else ""
            now = "; ".join(f"level {self.levels.index(lv) + 1} of {len(self.levels)} ({lv}): {_short(r)}"
                            for r in sorted(running) for lv in [level_of(r, self.levels)])
            print(f"   {done} of {total or '?'} tests done, {spent:.0f} s{left}; running {now or '-'}", flush=True)


def _short(nodeid: str) -> str:
    """A test id without its directory: what a person reads in a progress line."""
    return nodeid.rsplit("/", 1)[-1]


def _only(run: dict, kernels: list[str]) -> dict:
    """Keep the cases of the selected kernels (a test without a kernel marker is not deselected by
    --kernel, so its cases can appear); count what was dropped so the certificate says so."""
    import fnmatch

    keep = [c for c in run["cases"] if any(fnmatch.fnmatchcase(c.get("kernel", ""), k) for k in kernels)]
    dropped = len(run["cases"]) - len(keep)
    return {**run, "cases": keep, **({"dropped_other_kernels": dropped} if dropped else {})}


def main_job(out_dir: str, isa: str, kernels: list[str], profile: str, extra: list[str],
             benchmarks: str | None = None, only_selected: bool = False, explore: bool = False,
             jobs: int = 2) -> int:
    """Run every level in one session (`jobs` xdist processes), then write certificate.json, summary.md, report.html and
    junit.xml into out_dir.

    only_selected (`qoracle certify`): the certificate holds only the cases of the selected kernels.
    """
    from reports.certificate import PASSING, build, read_benchmarks, write_reports

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if explore and "--explore" not in extra:
        import random

        # one seed for every level, so each level draws the same cases and the run can be repeated
        extra = [*extra, "--explore", f"--hypothesis-seed={random.SystemRandom().randrange(2**32)}"]
    levels = parse_levels(isa)
    t0 = time.monotonic()
    runs: dict[str, dict] = {}
    for level in levels:
        ok, why = host_has(level) if level != "native" else (True, "")
        if not ok:
            print(f"== --isa {level} skipped: {why}")
            runs[level] = {"isa_requested": level, "skipped": why, "cases": [], "pytest_exit_code": None}
    todo = [lv for lv in levels if lv not in runs]
    if todo:
        for lv, run in run_levels(todo, out_dir, kernels, profile, extra, jobs).items():
            runs[lv] = _only(run, kernels) if only_selected and kernels else run
    cert = build([runs[lv] for lv in levels], kernels=kernels, profile=profile, benchmarks=read_benchmarks(benchmarks))
    paths = write_reports(cert, out_dir)
    print(f"== certificate: {', '.join(paths)}")
    print(f"== {cert['summary'].get('why') or cert['summary']['verdict']}")
    print(f"== verdict: {cert['summary']['verdict']}  {json.dumps(cert['summary']['counts'])}  "
          f"({time.monotonic() - t0:.0f} s)")
    return 0 if cert["summary"]["verdict"] in PASSING else 1
