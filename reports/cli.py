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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qoracle", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("formats", help="list the block formats the oracle implements")
    f.add_argument("-v", "--verbose", action="store_true", help="also print each upstream source")
    f.set_defaults(func=_cmd_formats)
    c = sub.add_parser("conventions", help="list the named quantization conventions (weights and activations)")
    c.add_argument("--json", action="store_true", help="print a JSON list of objects (name, summary, source, ...)")
    c.set_defaults(func=_cmd_conventions)
    return p


def main(argv: list[str] | None = None) -> int:
    _own_packages_first()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
