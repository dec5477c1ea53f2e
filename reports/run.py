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
    """'native' | 'all' (every level the host has) | a comma-separated list."""
    if spec == "all":
        return levels_on_host()
    return [s.strip() for s in spec.split(",") if s.strip()]


def run_level(level: str, out_dir: str, kernels: list[str], profile: str, extra: list[str]) -> dict:
    """Run `pytest conformance` capped at `level`; return its results (with the exit code)."""
    path = os.path.join(out_dir, f"results-{level}.json")
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
             benchmarks: str | None = None, only_selected: bool = False) -> int:
    """Run every level, then write certificate.json, summary.md, report.html and junit.xml into out_dir.

    only_selected (`qoracle certify`): the certificate holds only the cases of the selected kernels.
    """
    from reports.certificate import PASSING, build, read_benchmarks, write_reports

    os.makedirs(out_dir, exist_ok=True)
    runs = []
    for level in resolve_levels(isa):
        ok, why = host_has(level) if level != "native" else (True, "")
        if not ok:
            print(f"== --isa {level} skipped: {why}")
            runs.append({"isa_requested": level, "skipped": why, "cases": [], "pytest_exit_code": None})
            continue
        run = run_level(level, out_dir, kernels, profile, extra)
        runs.append(_only(run, kernels) if only_selected and kernels else run)
    cert = build(runs, kernels=kernels, profile=profile, benchmarks=read_benchmarks(benchmarks))
    paths = write_reports(cert, out_dir)
    print(f"== certificate: {', '.join(paths)}")
    print(f"== verdict: {cert['summary']['verdict']}  {json.dumps(cert['summary']['counts'])}")
    return 0 if cert["summary"]["verdict"] in PASSING else 1
