"""`qoracle fingerprint`: the probes separate what they claim to, each covered kernel available here
matches exactly its adapter's declared conventions, and deliberately wrong kernels do not.

The oracle-only tests judge numpy outputs built from the candidates' own predictions; the kernel
tests run the real kernels (and kernels/mutants) in the isolating worker, one worker for all.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kernels.fingerprints import probe_set, probe_sets
from kernels.isa import knobs_for
from kernels.registry import get
from kernels.worker import Worker
from reports.cli import main as cli_main
from reports.fingerprint import consistent, fingerprint, judge_case, render

# Candidates whose predictions a probe cannot tell apart (in every case, or in the named one), and why;
# every other pair must differ.
TIES = {
    ("q4_0", "q4_0.nofma"): "q4_0 is defined as the unfused rounding (oracle/ggml/q4_0.py)",
    ("q5_0", "q5_0.nofma"): "alias, as q4_0",
    ("q4_1", "q4_1.nofma"): "alias, as q4_0",
    ("q5_1", "q5_1.nofma"): "alias, as q4_0",
    ("q4_1", "q4_1.fma"): "(x - min)*id >= 0 plus 0.5 truncates the same fused or not: no boundary input separates them",
    ("q4_1.fma", "q4_1.nofma"): "as above",
    ("q5_1", "q5_1.fma"): "as q4_1",
    ("q5_1.fma", "q5_1.nofma"): "as q4_1",
    ("tinygemm.torch_test", "tinygemm.torchao"): "same dequantization (q - 8) * s + z; they differ only as quantizers",
    ("act.onednn.s8.per_tensor", "act.onednn.s8.per_tensor~divide", "ties at sa = 1"):
        "x / 1 = x * 1; the other case separates them",
}
# Kernels whose fingerprint disagrees with what their adapter states, because of a registered
# upstream defect (conformance/known_defects.py), and why.
KNOWN_DISAGREEMENTS = {
    "bestla.igemm_s8s8s32": "auto-round-lib 0.16.0 igemm_s8s8s32 returns garbage int32 (or crashes): no accumulator "
                            "hypothesis matches",
}


@pytest.fixture(scope="module")
def worker():
    with Worker(knobs_for("native")) as w:
        yield w


@pytest.fixture(scope="module")
def triton_worker():
    """The Triton probe sets' own worker (kernels/triton/runtime.py picks the interpreter there)."""
    with Worker(knobs_for("native")) as w:
        yield w


def _related(a, b) -> bool:
    """Whether a numerics case cannot tell a from b: one's prediction is consistent with the other."""
    return consistent(a.predicted, b) or consistent(b.predicted, a)


@pytest.mark.parametrize("kernel", probe_sets())
def test_probes_separate_their_candidates(kernel):
    """Within each convention case, two candidates predict the same bytes only where TIES says why;
    within each numerics case, two hypotheses are consistent with each other only where the case's
    own ties say why; so each case decides. Convention cases probe something declared, numerics
    cases expect only hypotheses they hold."""
    declared = get(kernel).conventions
    for case in probe_set(kernel).build():
        assert len(case.candidates) >= 2, case.name
        names = [c.name for c in case.candidates]
        assert len(set(names)) == len(names), f"{kernel} [{case.name}] repeats a candidate"
        ties = {tuple(sorted(t[:2])) for t in case.ties}
        for i, a in enumerate(case.candidates):
            for b in case.candidates[i + 1:]:
                pair = tuple(sorted((a.name, b.name)))
                if case.trait:
                    assert _related(a, b) == (pair in ties), f"{kernel} [{case.name}] {pair}"
                    continue
                same = a.predicted.tobytes() == b.predicted.tobytes() and a.predicted.shape == b.predicted.shape
                tied = pair in TIES or (*pair, case.name) in TIES
                assert same == tied, f"{kernel} [{case.name}] {pair}: same={same}"
        if case.trait:
            assert set(case.selects or ()) <= set(names), f"{kernel} [{case.name}] expects an absent hypothesis"
        else:
            assert any(c.name in declared for c in case.candidates), f"{kernel} [{case.name}] probes nothing declared"


def test_judge_case_reads_a_fused_quantizer_as_fma():
    """A numpy 'kernel' that rounds q4_0 with one FMA is fingerprinted as q4_0.fma, not the declared q4_0."""
    case = next(c for c in probe_set("ggml.quantize").build() if c.name == "q4_0")
    fma = next(c for c in case.candidates if c.name == "q4_0.fma")
    res = judge_case(case, fma.predicted.copy(), get("ggml.quantize").conventions)
    matched = {r.candidate: r.matched for r in res.rows}
    assert matched == {"q4_0": "", "q4_0.nofma": "", "q4_0.fma": "bytes", "q4_0~adjacent_nibbles": ""}
    assert res.problems == ["declared q4_0 did not match", "undeclared q4_0.fma matched"]


def test_judge_case_bound_criterion():
    """An output one ulp off the bit-exact model matches by bound when only that candidate's bound holds it."""
    case = probe_set("torch.dyn_quant_matmul_4bit").build()[0]
    ref = case.candidates[0]
    y = np.nextafter(ref.predicted, np.float32(np.inf), dtype=np.float32)
    res = judge_case(case, y, get("torch.dyn_quant_matmul_4bit").conventions)
    assert [(r.candidate, r.matched) for r in res.rows] == [
        ("torch.dyn_quant_4bit", "bound"), ("torch.dyn_quant_4bit~act_rne", ""),
        ("torch.dyn_quant_4bit~nibbles_swapped", "")]
    assert res.problems == []
    far = dataclasses.replace(case, candidates=case.candidates[:1])
    assert judge_case(far, y + 1, ("torch.dyn_quant_4bit",)).problems == ["declared torch.dyn_quant_4bit did not match"]


@pytest.mark.parametrize("kernel", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[k]))
                                    if k in KNOWN_DISAGREEMENTS else k for k in probe_sets()])
def test_fingerprint_agrees_with_declaration(worker, triton_worker, kernel):
    """Each kernel available here matches its declared conventions and the numerics its adapter states."""
    fp = fingerprint(kernel, worker, triton_worker=triton_worker)
    if fp.unavailable:
        pytest.skip(f"{kernel} unavailable here: {fp.unavailable}")
    table = render(fp)
    assert fp.ok, table
    probed = {r.candidate for c in fp.cases for r in c.rows}
    assert set(fp.declared) & probed <= set(fp.matched), table


MUTANTS = [
    # (kernel, mutant, what the fingerprint should read instead of the declared convention)
    ("ggml.quantize", "ggml.q8_0_rne_not_half_away", "q8_0.x86"),
    ("ggml.from_float", "ggml.q8_0_x86_half_away_not_rne", "q8_0"),
    ("onnxruntime.matmulnbits", "ort.int4_j_j16_pairing_not_adjacent", "q4_0"),
    ("torch.weight_int4pack_mm", "torch.int4pack_zero_point_sign", "tinygemm.torchao~zero_subtracted"),
    ("torch.dyn_quant_matmul_4bit", "torch.dyn_quant_nibbles_swapped", "torch.dyn_quant_4bit~nibbles_swapped"),
    ("bestla.woqgemm_s8", "bestla.s8_half_away_not_rne", "act.onednn.s8.per_tensor~half_away"),
]


@pytest.mark.parametrize("kernel, mutant, reads_as", MUTANTS, ids=[m[1] for m in MUTANTS])
def test_wrong_kernel_fingerprints_as_something_else(kernel, mutant, reads_as):
    fp = fingerprint(kernel, mutant=mutant)
    if fp.unavailable:
        pytest.skip(f"{kernel} unavailable here: {fp.unavailable}")
    table = render(fp)
    assert not fp.ok, table
    assert reads_as in fp.matched, table
    probed = {r.candidate for c in fp.cases for r in c.rows}
    declared = set(fp.declared) & probed
    assert declared - set(fp.matched), table  # some declared convention it no longer matches


NUMERICS_MUTANTS = [
    # (kernel, mutant, trait, a hypothesis it should read as, instead of what the adapter states)
    ("ggml.vec_dot", "ggml.vec_dot_fp16_accumulator", "accumulator, q4_0", "acc fp16 seq"),
    ("torch.weight_int8pack_mm", "torch.int8pack_gemv_half_accumulator", "accumulator, fp16 path, M = 1",
     "acc fp16 seq"),
    ("torch.weight_int8pack_mm", "torch.int8pack_bf16_truncation", "output cast to bf16", "toward zero"),
    ("onnxruntime.qlinearmatmul", "ort.qlinearmatmul_requant_half_away", "requantization rounding", "half away"),
]


@pytest.mark.parametrize("kernel, mutant, trait, reads_as", NUMERICS_MUTANTS, ids=[m[1] for m in NUMERICS_MUTANTS])
def test_wrong_numerics_fingerprint_as_what_they_do(kernel, mutant, trait, reads_as):
    fp = fingerprint(kernel, mutant=mutant)
    if fp.unavailable:
        pytest.skip(f"{kernel} unavailable here: {fp.unavailable}")
    assert not fp.ok, render(fp)
    assert reads_as in fp.readings[trait], render(fp)


def test_cli_exit_codes(capsys):
    assert cli_main(["fingerprint", "--kernel", "ggml.from_float", "--mutant", "ggml.q8_0_x86_half_away_not_rne"]) in (1, 2)
    out = capsys.readouterr().out
    assert "[q8_0 ties]" in out or "UNAVAILABLE" in out
    assert cli_main(["fingerprint", "--kernel", "no.such.kernel"]) == 2
    assert "unknown kernel" in capsys.readouterr().err
