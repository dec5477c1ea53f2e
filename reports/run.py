"""The main job: run the conformance suite at each ISA level, then write the certificate.

Each level runs in its own pytest process, because a cap is environment that must be in
place before a kernel library loads (the suite's worker process inherits it). The results
files of all levels are merged into one certificate (reports/certificate.py), written as
certificate.json, summary.md, report.html and junit.xml.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from kernels.isa import host_has, levels_on_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def run_level(level: str, out_dir: str, kernels: list[str], profile: str, extra: list[str]) -> dict:
    """Run `pytest conformance` capped at `level`; return its results (with the exit code)."""
    path = os.path.join(os.path.abspath(out_dir), f"results-{level}.json")
    cmd = [sys.executable, "-m", "pytest", os.path.join(ROOT, "conformance"), "-q", "-p", "no:cacheprovider",
           "--rootdir", ROOT, "--isa", level, "--profile", profile, "--results", path]
    for k in kernels:
        cmd += ["--kernel", k]
    cmd += extra
    print(f"== conformance at --isa {level}: {' '.join(cmd[2:])}", flush=True)
    rc = subprocess.call(cmd, cwd=ROOT)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    else:
        data = {"isa_requested": level, "profile": profile, "cases": []}
    data["pytest_exit_code"] = rc
    return data


def _only(run: dict, kernels: list[str]) -> dict:
    """Keep the cases of the selected kernels (a test without a kernel marker is not deselected by
    --kernel, so its cases can appear); count what was dropped so the certificate says so."""
    import fnmatch

    keep = [c for c in run["cases"] if any(fnmatch.fnmatchcase(c.get("kernel", ""), k) for k in kernels)]
    dropped = len(run["cases"]) - len(keep)
    return {**run, "cases": keep, **({"dropped_other_kernels": dropped} if dropped else {})}


def main_job(out_dir: str, isa: str, kernels: list[str], profile: str, extra: list[str],
             benchmarks: str | None = None, only_selected: bool = False, explore: bool = False) -> int:
    """Run every level, then write certificate.json, summary.md, report.html and junit.xml into out_dir.

    only_selected (`qoracle certify`): the certificate holds only the cases of the selected kernels.
    """
    from reports.certificate import PASSING, build, read_benchmarks, write_reports

    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if explore and "--explore" not in extra:
        import random

        # one seed for every level, so each level draws the same cases and the run can be repeated
        extra = [*extra, "--explore", f"--hypothesis-seed={random.SystemRandom().randrange(2**32)}"]
    runs = []
    levels = resolve_levels(isa)
    for i, level in enumerate(levels, 1):
        ok, why = host_has(level) if level != "native" else (True, "")
        if not ok:
            print(f"== level {i} of {len(levels)}: --isa {level} skipped: {why}")
            runs.append({"isa_requested": level, "skipped": why, "cases": [], "pytest_exit_code": None})
            continue
        print(f"== level {i} of {len(levels)}: --isa {level}", flush=True)
        run = run_level(level, out_dir, kernels, profile, extra)
        runs.append(_only(run, kernels) if only_selected and kernels else run)
    cert = build(runs, kernels=kernels, profile=profile, benchmarks=read_benchmarks(benchmarks))
    paths = write_reports(cert, out_dir)
    print(f"== certificate: {', '.join(paths)}")
    print(f"== verdict: {cert['summary']['verdict']}  {json.dumps(cert['summary']['counts'])}")
    return 0 if cert["summary"]["verdict"] in PASSING else 1
