"""qoracle: a referee for low-precision (quantized) matrix-multiply kernels.

Certifies the kernels installed here against bit-exact reference implementations (`run`,
`certify`), judges a vendor's results offline (`export`, `verify`), and measures the suite itself
(`selftest`, `fingerprint`). Also `python -m reports`.
"""
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


def _check_kernels(patterns: list[str]) -> None:
    """A pattern that matches no registered kernel is a usage error before anything runs."""
    from kernels.registry import kernels, select

    for p in patterns:
        if not select([p]):
            raise ValueError(f"no registered kernel matches {p!r}; known: {', '.join(k.name for k in kernels())}")


def _run_job(args: argparse.Namespace, kernels: list[str], extra: list[str], only_selected: bool) -> int:
    from reports.certificate import read_benchmarks
    from conformance.levels import parse as parse_levels
    from reports.run import main_job

    _check_kernels(kernels)
    read_benchmarks(args.benchmarks)  # a bad file is refused now, not after the whole suite ran
    parse_levels(args.isa)
    return main_job(os.path.abspath(args.out), args.isa, kernels, args.profile, extra, args.benchmarks,
                    only_selected=only_selected, explore=args.explore, jobs=args.jobs)


def _cmd_run(args: argparse.Namespace) -> int:
    return _run_job(args, args.kernel, args.pytest_args, only_selected=False)


def _cmd_certify(args: argparse.Namespace) -> int:
    return _run_job(args, [args.kernel], [], only_selected=True)


def _cmd_export(args: argparse.Namespace) -> int:
    from reports.vectors import export, parse_shapes

    m = export(args.convention, parse_shapes(args.shapes), args.seed, args.out, raw=args.raw)
    for c in m["cases"]:
        print(f"{c['file']}  {m['files'][c['file']]}  result tensor {c['result']['tensor']!r} float16 {c['result']['shape']}")
    print(f"== {len(m['cases'])} cases and manifest.json in {args.out}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from reports.certificate import PASSING
    from reports.verify import verify

    cert, _ = verify(args.vectors, args.results, kernel=args.kernel, out_dir=args.out)
    print(f"== verdict: {cert['summary']['verdict']}  {cert['summary']['counts']}")
    return 0 if cert["summary"]["verdict"] in PASSING else 1


def _cmd_emulate(args: argparse.Namespace) -> int:
    from reports.emulate import emulate

    ids = emulate(args.vectors, args.model, args.out, raw=args.raw)
    print(f"== {args.model}: {len(ids)} results written to {args.out}")
    return 0


def _cmd_findings(args: argparse.Namespace) -> int:
    from reports.findings import markdown

    print(markdown(args.results, args.host), end="")
    return 0


def _cmd_isa(args: argparse.Namespace) -> int:
    from kernels import emulation
    from kernels.isa import ORDER, host_has, knobs_for, levels_on_host, mode
    from kernels.registry import kernels
    from reports.certificate import host

    h = host()
    print(f"host: {h['cpu']} ({h['machine']})")
    print(f"flags: {' '.join(h['flags'])}")
    for level in ORDER:
        ok, why = host_has(level)
        knobs = " ".join(f"{k}={v}" for k, v in knobs_for(level).items())
        print(f"  {level:12s} {'yes' if ok else 'no ':3s} {why or knobs}")
    levels = levels_on_host()
    q = emulation.qemu()
    where = f"{emulation.QEMU} {q.version_text} ({q.path})" if q else f"{emulation.QEMU} absent"
    print(f"emulated CPUs ({emulation.ENV}={emulation.setting()}; {where}):")
    for level in levels:
        c = emulation.check(level) if level in emulation.MODELS else None
        model = emulation.MODELS[level].model.split(",")[0] if c else ""
        print(f"  {level:12s} {model + ': ' if c and c.seen else ''}{c.summary if c else emulation.why_not(level)}")
    print("how each kernel runs at each level (native | capped | emulated | unavailable):")
    print(f"  {'kernel':40s} " + " ".join(f"{lv:15s}" for lv in levels))
    reasons: list[str] = []
    for k in kernels():
        cells = []
        for level in levels:
            m = mode(k, level)
            if m.why not in reasons:
                reasons.append(m.why)
            cells.append(f"{m.how}[{reasons.index(m.why) + 1}]")
        print(f"  {k.name:40s} " + " ".join(f"{c:15s}" for c in cells))
    print("why:")
    for i, why in enumerate(reasons, 1):
        print(f"  [{i}] {why}")
    return 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from reports.selftest import main as selftest

    return selftest(args.mutant, args.profile, args.jobs, args.json, not args.no_baseline, args.all_failures)


def _cmd_fingerprint(args: argparse.Namespace) -> int:
    from reports.fingerprint import main as fingerprint, main_all

    if args.all or not args.kernel:
        if args.mutant:
            raise ValueError("--mutant fingerprints one kernel: name it with --kernel")
        return main_all()
    return fingerprint(args.kernel, args.mutant)


def _cmd_zoo(args: argparse.Namespace) -> int:
    from reports.zoo import main as zoo

    return zoo(args.entry, args.list, args.cache, args.json, args.markdown, args.timeout)


def build_parser() -> argparse.ArgumentParser:
    from reports.vectors import oracle_version

    p = argparse.ArgumentParser(prog="qoracle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"qoracle {oracle_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("formats", help="list the block formats the oracle implements")
    f.add_argument("-v", "--verbose", action="store_true", help="also print each upstream source")
    f.set_defaults(func=_cmd_formats)
    c = sub.add_parser("conventions", help="list the named quantization conventions (weights and activations)")
    c.add_argument("--json", action="store_true", help="print a JSON list of objects (name, summary, source, ...)")
    c.set_defaults(func=_cmd_conventions)
    r = sub.add_parser("run", help="the main job: certify the kernels available here and write a report")
    r.add_argument("--out", default="out", help="directory for results and the four reports (relative to here)")
    r.add_argument("--isa", default="all", help="all (every level the host has, the default) | native | a,b,c")
    r.add_argument("--kernel", action="append", default=[], help="only kernels matching these globs")
    r.add_argument("--profile", default="quick", choices=("quick", "full"))
    r.add_argument("--benchmarks", default=None, help="a pytest-benchmark JSON file for the performance table")
    r.add_argument("--explore", action="store_true",
                   help="random hypothesis examples from a printed seed instead of the fixed case set")
    r.add_argument("--jobs", type=int, default=2, help="ISA levels run at a time (each its own pytest process)")
    r.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    r.set_defaults(func=_cmd_run)
    ce = sub.add_parser("certify", help="certify one kernel: the conformance suite at each ISA level, then the certificate")
    ce.add_argument("--kernel", required=True, help="a registered kernel name (or glob)")
    ce.add_argument("--isa", default="all", help="all (every level the host has) | native | a,b,c")
    ce.add_argument("--out", default="certificate", help="directory for certificate.json, report.html, summary.md, junit.xml")
    ce.add_argument("--profile", default="quick", choices=("quick", "full"))
    ce.add_argument("--benchmarks", default=None, help="a pytest-benchmark JSON file for the performance table")
    ce.add_argument("--explore", action="store_true",
                    help="random hypothesis examples from a printed seed instead of the fixed case set")
    ce.add_argument("--jobs", type=int, default=2, help="ISA levels run at a time (each its own pytest process)")
    ce.set_defaults(func=_cmd_certify)
    e = sub.add_parser("export", help="write golden vectors (one GGUF per case, manifest.json with SHA-256 sums)")
    e.add_argument("--convention", required=True, help="a weight convention (see `qoracle conventions`)")
    e.add_argument("--shapes", required=True, help="MxKxN[,MxKxN...]")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", required=True, help="directory for the vectors")
    e.add_argument("--raw", action="store_true", help="also write each case as raw little-endian .bin for C harnesses")
    e.set_defaults(func=_cmd_export)
    v = sub.add_parser("verify", help="judge a vendor's results against golden vectors and write a certificate")
    v.add_argument("vectors", help="directory written by `qoracle export`")
    v.add_argument("results", help="a GGUF with one float16 tensor per case id, or a directory of the raw files the manifest names")
    v.add_argument("--out", default=None, help="directory for the certificate (nothing written without it)")
    v.add_argument("--kernel", default="offline", help="the kernel's name for the certificate")
    v.set_defaults(func=_cmd_verify)
    em = sub.add_parser("emulate", help="results from a numpy model of the ESIMD INT4 GEMV (or a deliberately wrong one)")
    em.add_argument("vectors", help="directory written by `qoracle export --convention esimd.int4_gemv`")
    em.add_argument("--model", default="esimd", help="esimd | esimd-unfused | swapped-nibbles | scale-after-sum-fp16")
    em.add_argument("--out", required=True, help="results GGUF file (or directory with --raw)")
    em.add_argument("--raw", action="store_true", help="write the raw little-endian files the manifest names")
    em.set_defaults(func=_cmd_emulate)
    i = sub.add_parser("isa", help="what this host has, and what each kernel's knobs can cap")
    i.set_defaults(func=_cmd_isa)
    fi = sub.add_parser("findings", help="a Markdown table of what each ISA level found, from results files")
    fi.add_argument("results", nargs="+", help="results JSON files (pytest conformance --results, one per level)")
    fi.add_argument("--host", default="this host", help="heading: the machine the results come from")
    fi.set_defaults(func=_cmd_findings)
    st = sub.add_parser("selftest", help="run the suite against every deliberately wrong kernel; fail if one survives")
    st.add_argument("--mutant", action="append", default=[], help="only mutants matching these globs")
    st.add_argument("--profile", default="quick", choices=("quick", "full"))
    st.add_argument("--jobs", type=int, default=2, help="pytest processes at a time")
    st.add_argument("--json", default=None, help="also write every mutant's outcome to this JSON file")
    st.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the same kernels")
    st.add_argument("--all-failures", action="store_true", help="run every test (no -x) for each mutant")
    st.set_defaults(func=_cmd_selftest)
    fp = sub.add_parser("fingerprint", help="which named conventions a kernel matches, from probes that separate them")
    fp.add_argument("--kernel", default=None, help="a registered kernel name with a probe set (default: every one)")
    fp.add_argument("--all", action="store_true", help="every kernel with a probe set, as one Markdown table")
    fp.add_argument("--mutant", default=None, help="fingerprint a deliberately wrong kernel (kernels/mutants) instead")
    fp.set_defaults(func=_cmd_fingerprint)
    z = sub.add_parser("zoo", help="the suite against real upstream defects: affected and fixed releases, each in its own venv")
    z.add_argument("--entry", action="append", default=[], help="only entries matching these globs")
    z.add_argument("--list", action="store_true", help="print the registry and stop")
    z.add_argument("--cache", default="~/.cache/qoracle-zoo", help="folder for the environments (one per package and version)")
    z.add_argument("--json", default=None, help="also write the report as JSON to this file")
    z.add_argument("--markdown", default=None, help="also write the Markdown table to this file (docs/zoo.md)")
    z.add_argument("--timeout", type=float, default=1200, help="seconds for one selection's pytest run")
    z.set_defaults(func=_cmd_zoo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit 0 on a pass, 1 on a failed verdict, 2 on bad input (one line on stderr, never a traceback)."""
    _own_packages_first()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, KeyError, TypeError, IndexError, MemoryError) as e:
        msg = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        print(f"qoracle {args.command}: error: {msg}".replace("\n", " ")[:600], file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
