"""The main job: run the conformance suite at each ISA level, then write the certificate.

Each level runs in its own pytest process, because a cap is environment that must be in
place before a kernel library loads (the suite's worker process inherits it). Levels run
`jobs` at a time, each writing its pytest output to `log-LEVEL.txt` beside its results, while
one line a level says how far it is (the percentage pytest prints, elapsed time and an
estimate of what is left). The results files of all levels are merged into one certificate
(reports/certificate.py), written as certificate.json, summary.md, report.html and junit.xml.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kernels.isa import host_has, levels_on_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PERCENT = re.compile(rb"\[\s*(\d+)%\]")
_TICK = 20.0  # seconds between progress lines


def resolve_levels(spec: str) -> list[str]:
    """'native' | 'all' (every level the host has) | a comma-separated list (a ValueError for an unknown name)."""
    from kernels.isa import LEVELS

    if spec == "all":
        return levels_on_host()
    levels = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown or not levels:
        raise ValueError(f"unknown ISA level(s) {', '.join(unknown) or repr(spec)}; known: all, {', '.join(LEVELS)}")
    return levels


def _command(level: str, path: str, kernels: list[str], profile: str, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", os.path.join(ROOT, "conformance"), "-q", "-p", "no:cacheprovider",
           "--rootdir", ROOT, "--isa", level, "--profile", profile, "--results", path]
    for k in kernels:
        cmd += ["--kernel", k]
    return cmd + extra


def run_level(level: str, out_dir: str, kernels: list[str], profile: str, extra: list[str]) -> dict:
    """Run `pytest conformance` capped at `level` (output to log-LEVEL.txt); return its results with
    the exit code and the seconds it took."""
    out_dir = os.path.abspath(out_dir)
    path, log = os.path.join(out_dir, f"results-{level}.json"), os.path.join(out_dir, f"log-{level}.txt")
    t0 = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.call(_command(level, path, kernels, profile, extra), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    else:
        data = {"isa_requested": level, "profile": profile, "cases": []}
    data["pytest_exit_code"] = rc
    data["seconds"] = round(time.monotonic() - t0, 1)
    return data


def _progress(log: str) -> int | None:
    """The last percentage pytest -q printed to `log`, or None before the first."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 4096))
            found = _PERCENT.findall(f.read())
    except OSError:
        return None
    return int(found[-1]) if found else None


class _Reporter:
    """One progress line per running level every few seconds, until stopped."""

    def __init__(self, out_dir: str, total: int) -> None:
        self.out_dir, self.total = out_dir, total
        self.started: dict[str, tuple[int, float]] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def begin(self, level: str, index: int) -> None:
        with self.lock:
            self.started[level] = (index, time.monotonic())
        print(f"== level {index} of {self.total}: --isa {level} started (log {self.out_dir}/log-{level}.txt)", flush=True)

    def end(self, level: str, run: dict) -> None:
        with self.lock:
            index, _ = self.started.pop(level)
        counts = run.get("outcomes", {})
        print(f"== level {index} of {self.total}: --isa {level} done in {run['seconds']:.0f} s, pytest exit "
              f"{run['pytest_exit_code']}, {json.dumps(counts)}", flush=True)

    def loop(self) -> None:
        while not self.stop.wait(_TICK):
            with self.lock:
                running = dict(self.started)
            for level, (index, t0) in sorted(running.items(), key=lambda x: x[1][0]):
                pct, spent = _progress(os.path.join(self.out_dir, f"log-{level}.txt")), time.monotonic() - t0
                left = f", about {spent * (100 - pct) / pct:.0f} s left" if pct else ""
                print(f"   level {index} of {self.total} (--isa {level}): {pct if pct is not None else 0}% of its tests, "
                      f"{spent:.0f} s{left}", flush=True)


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
    """Run every level (`jobs` at a time), then write certificate.json, summary.md, report.html and
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
    levels = resolve_levels(isa)
    t0 = time.monotonic()
    reporter = _Reporter(out_dir, len(levels))
    runs: dict[str, dict] = {}
    for level in levels:
        ok, why = host_has(level) if level != "native" else (True, "")
        if not ok:
            print(f"== --isa {level} skipped: {why}")
            runs[level] = {"isa_requested": level, "skipped": why, "cases": [], "pytest_exit_code": None}

    def one(level: str) -> None:
        reporter.begin(level, levels.index(level) + 1)
        run = run_level(level, out_dir, kernels, profile, extra)
        reporter.end(level, run)
        runs[level] = _only(run, kernels) if only_selected and kernels else run

    ticker = threading.Thread(target=reporter.loop, daemon=True)
    ticker.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, [lv for lv in levels if lv not in runs]))
    finally:
        reporter.stop.set()
    cert = build([runs[lv] for lv in levels], kernels=kernels, profile=profile, benchmarks=read_benchmarks(benchmarks))
    paths = write_reports(cert, out_dir)
    print(f"== certificate: {', '.join(paths)}")
    print(f"== {cert['summary'].get('why') or cert['summary']['verdict']}")
    print(f"== verdict: {cert['summary']['verdict']}  {json.dumps(cert['summary']['counts'])}  "
          f"({time.monotonic() - t0:.0f} s)")
    return 0 if cert["summary"]["verdict"] in PASSING else 1
