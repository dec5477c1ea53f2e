"""`qoracle`: the project's command line (also `python -m reports`)."""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _own_packages_first() -> None:
    """Put the checkout first on sys.path: PyPI has an unrelated `kernels` package."""
    if sys.path[0] != ROOT:
        sys.path.insert(0, ROOT)


def _cmd_formats(args: argparse.Namespace) -> int:
    from oracle.formats import format_names, get_format

    for name in format_names():
        fmt = get_format(name)
        print(f"{name:14s} {fmt.block_size:4d} values/{fmt.block_bytes:3d} bytes  {fmt.summary}")
        if args.verbose:
            print(f"{'':14s} source: {fmt.source}")
    return 0


def _cmd_conventions(args: argparse.Namespace) -> int:
    import json

    import oracle.conventions as conventions

    rows = [conventions.get(n).describe() for n in conventions.names()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['name']:34s} {r['kind']:10s} {r['summary']}")
        print(f"{'':34s} source: {r['source']}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from reports.run import main_job

    return main_job(args.out, args.isa, args.kernel, args.profile, args.pytest_args)


def _cmd_isa(args: argparse.Namespace) -> int:
    from kernels.isa import ORDER, host_has, knobs_for
    from kernels.registry import kernels
    from reports.certificate import host

    h = host()
    print(f"host: {h['cpu']} ({h['machine']})")
    print(f"flags: {' '.join(h['flags'])}")
    for level in ORDER:
        ok, why = host_has(level)
        knobs = " ".join(f"{k}={v}" for k, v in knobs_for(level).items())
        print(f"  {level:12s} {'yes' if ok else 'no ':3s} {why or knobs}")
    print("kernels and the knobs that cap them:")
    for k in kernels():
        print(f"  {k.name:40s} {', '.join(k.isa_knobs) or 'no ISA knob: runs at what its library picks'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qoracle", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("formats", help="list the block formats the oracle implements")
    f.add_argument("-v", "--verbose", action="store_true", help="also print each upstream source")
    f.set_defaults(func=_cmd_formats)
    c = sub.add_parser("conventions", help="list the named quantization conventions (weights and activations)")
    c.add_argument("--json", action="store_true", help="print a JSON list of objects (name, summary, source, ...)")
    c.set_defaults(func=_cmd_conventions)
    r = sub.add_parser("run", help="the main job: certify the kernels available here and write a report")
    r.add_argument("--out", default="out", help="directory for results, certificate.json and summary.md")
    r.add_argument("--isa", default="native", help="native | all (every level the host has) | a,b,c")
    r.add_argument("--kernel", action="append", default=[], help="only kernels matching these globs")
    r.add_argument("--profile", default="quick", choices=("quick", "full"))
    r.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    r.set_defaults(func=_cmd_run)
    i = sub.add_parser("isa", help="what this host has, and what each kernel's knobs can cap")
    i.set_defaults(func=_cmd_isa)
    return p


def main(argv: list[str] | None = None) -> int:
    _own_packages_first()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
