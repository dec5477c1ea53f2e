"""How long the quick profile takes at one ISA level, and where its time goes.

    python benchmarks/bench_quick_profile.py [--isa avx2] [--jobs 2] [--top 15] [--json FILE]

Runs `pytest conformance --isa LEVEL -n JOBS -q --durations=0` once in a subprocess (the command a
user runs) and reports its wall time, the pytest totals line, and the test-seconds (setup + call +
teardown, summed over the xdist processes) per kernel: a spec engine test counts for the kernel in
its id, a hand-written test for its module. Test-seconds over JOBS plus the session's fixed start
(collection, the first worker of each process) is the wall time, so the table says what to make
cheaper. Where Triton runs in the CPU interpreter its kernels dominate; on a GPU host they run
natively.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DURATION = re.compile(r"\s*([\d.]+)s (?:call|setup|teardown)\s+(\S+)")


def owner(nodeid: str) -> str:
    """The kernel a test judges: the spec id's kernel for the engine, else the test module."""
    path, _, name = nodeid.partition("::")
    if path.endswith("test_specs.py") and "[" in name:
        param = name.split("[", 1)[1].rstrip("]")
        return param.split("-", 1)[0]
    return os.path.basename(path)


def test_seconds(lines: list[str]) -> collections.Counter:
    """Seconds per owner from pytest's --durations=0 lines."""
    spent: collections.Counter = collections.Counter()
    for line in lines:
        m = _DURATION.match(line)
        if m:
            spent[owner(m.group(2))] += float(m.group(1))
    return spent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", default="avx2", help="one ISA level (qoracle isa lists this host's)")
    ap.add_argument("--jobs", type=int, default=2, help="pytest-xdist processes")
    ap.add_argument("--top", type=int, default=15, help="kernels listed")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    cmd = [sys.executable, "-m", "pytest", "conformance", "--isa", args.isa, "-n", str(args.jobs), "-q", "-rN",
           "-p", "no:cacheprovider", "--durations=0", "--durations-min=0"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = done.stdout.splitlines()
    totals = next((ln.strip("= ") for ln in reversed(lines) if " in " in ln and ("passed" in ln or "failed" in ln)),
                  "no totals line")
    spent = test_seconds(lines)
    total = sum(spent.values())
    print(f"$ {' '.join(['pytest'] + cmd[3:])}")
    print(f"exit {done.returncode}; {totals}")
    print(f"wall {wall:.1f} s; {total:.1f} test-seconds over {args.jobs} processes "
          f"({total / args.jobs:.1f} s each), the rest is the session's start")
    print(f"\n| kernel or module | test-seconds | share |\n|---|---|---|")
    for name, sec in spent.most_common(args.top):
        print(f"| {name} | {sec:.1f} | {100 * sec / total:.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": cmd[3:], "exit": done.returncode, "totals": totals, "wall_s": wall,
                       "test_seconds": dict(spent.most_common())}, f, indent=1)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
