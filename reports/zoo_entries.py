"""The defect zoo's registry: real defects reported against shipped low-precision kernels.

Each entry names the upstream report, the release that has the defect and the release that fixed
it, and the conformance selection that should see it. `qoracle zoo` installs each release in its
own virtual environment and runs that selection there (reports/zoo.py): a defect the suite finds
in the affected release, and not in the fixed one, counts as detected (the Defects4J rule).

`expected` is "detected" for a defect upstream fixed, or "known" for behaviour upstream keeps by
design, which the suite must report as a registered known defect or a modelled host behaviour,
never as a surprise. Versions carry pip's own spelling; torch pins name the CPU build
(`2.5.1+cpu`), since a plain torch pin resolves to a multi-GB CUDA wheel.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entry", "ZOO", "KINDS", "TEST_REQUIREMENTS", "TORCH_FIRST"]

KINDS = ("zero point", "layout", "shape tail", "rounding", "ISA path", "saturation", "scale underflow")
TEST_REQUIREMENTS = ("pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3")  # what conformance/ imports
TORCH_FIRST = "torch==2.13.0+cpu"  # installed before anything that pulls torch in


@dataclass(frozen=True)
class Entry:
    """One upstream defect and how to look for it."""

    id: str
    link: str  # the upstream issue or pull request
    kind: str  # one of KINDS
    trigger: str  # what input or host shows it, in one line
    package: str  # pip distribution name
    affected: str  # a release with the defect (pip version)
    fixed: str | None  # the first release without it; None where upstream keeps it by design
    selection: tuple[str, ...]  # pytest arguments after the test paths: node ids, files, -k
    expected: str = "detected"  # "detected" | "known"
    kernels: tuple[str, ...] = ()  # --kernel globs
    isa: str = "native"
    requirements: tuple[str, ...] = ()  # more pins for this entry's environments
    needs_torch: bool = False
    known_pattern: str = ""  # regex over a recorded case: the suite reported the by-design behaviour
    fixed_not_run: str = ""  # why the fixed release is not installed (stated, never assumed to pass)
    gap: str = ""  # the generic case family that would close a miss
    notes: str = ""

    def pins(self, version: str) -> tuple[str, ...]:
        return (f"{self.package}=={version}", *self.requirements)

    def versions(self) -> list[tuple[str, str]]:
        """(role, version) pairs to install: the affected release, then the fixed one."""
        out = [("affected" if self.expected == "detected" else "by design", self.affected)]
        if self.fixed:
            out.append(("fixed", self.fixed))
        return out


_ORT = ("onnx==1.23.2",)
_ORT_OLD = ("onnx==1.23.2", "numpy<2")  # wheels before 1.19 are built against numpy 1.x
_MNB = "conformance/test_onnxruntime_matmulnbits.py"
_INT8 = "conformance/test_onnxruntime_int8.py"

ZOO: list[Entry] = [
    Entry(
        id="ort-19450-matmulnbits-zero-points",
        link="https://github.com/microsoft/onnxruntime/issues/19450",
        kind="zero point", package="onnxruntime", affected="1.17.0", fixed="1.17.1",
        trigger="MatMulNBits with asymmetric 4-bit weights (packed zero points): garbage output "
                "(RTN/GPTQ INT4 Llama-2, block 32, accuracy_level 0, on Windows; reported fixed within days)",
        selection=(*(f"{_MNB}::test_matmulnbits_{t}" for t in (
            "crafted[4-zp-0]", "crafted[4-zp-4]", "crafted[4-sym-0]", "crafted[4-sym-4]",
            "hypothesis[4-0]", "hypothesis[4-4]",
            *(f"zero_point_layouts[4-{lv}-{feed}]" for lv in (0, 4) for feed in ("constant", "runtime_zp", "runtime")))),
            "--profile", "full"),
        kernels=("onnxruntime.matmulnbits",), requirements=_ORT_OLD,
        notes="on this host the 1.17.0 and 1.17.1 wheels compute MatMulNBits byte for byte alike: both send "
              "4-bit weights with K in whole blocks and constant zero points to Neural Speed (BesTLA, "
              "matmul_nbits.cc under ORT_NEURAL_SPEED; its xbyak JIT maps executable pages only for those "
              "models) and the rest to MLAS, and they return identical bytes on 3456 configurations (N 1..64, "
              "K 32..256, blocks 16..128, M 1/4/17, with and without zero points, accuracy_level 0 and 4, 1 and "
              "2 threads, zero points as initializer or graph input) and on N = K = 4096 with up to 16 threads, "
              "all inside the oracle's bound; quantize_matmul_4bits gives identical bytes too; in MatMulNBits "
              "the wheels differ only by matmul_4bits_quantizer.py's --symmetric parsing (1.17.0 reads "
              "'--symmetric False' as True). The selection runs the full profile",
        gap="no input separates the two releases on x86-64 Linux with AVX2, so the fix lies where this host "
            "cannot look: BesTLA's AVX512F kernels (an AVX512 host) or the Windows build the report used. The "
            "zero-point layout family (test_matmulnbits_zero_point_layouts) now reaches the Neural Speed path, "
            "which the earlier cases almost never did (they put K off the block): K in whole blocks with odd "
            "and even block counts, a foreign value in each row's unused zero-point slots, zero points of every "
            "code, N off the column tiles, M 1/16/17, 1..4 threads, weights as initializers, zero points or all "
            "weights fed at run time; it passes on both releases"),
    Entry(
        id="ort-28551-matmulnbits-block-512",
        link="https://github.com/microsoft/onnxruntime/issues/28551",
        kind="shape tail", package="onnxruntime", affected="1.26.0", fixed="1.32.0",
        trigger="MatMulNBits bits=4 block_size=512 on the CPU EP returns all zeros (16..256 are right)",
        selection=(_MNB, "-k", "every_block_size"), kernels=("onnxruntime.matmulnbits",), requirements=_ORT,
        notes="fixed is the first release found passing here: 1.27.0, 1.29.0, 1.30.0 and 1.31.0 still give "
              "wrong sums (not only zeros) at blocks 512, 1024 and 2048 for 4 and 8 bits; 1.31.1 was not checked",
        gap="every accepted block size once (test_matmulnbits_every_block_size)"),
    Entry(
        id="torch-136746-int-mm-no-vnni",
        link="https://github.com/pytorch/pytorch/issues/136746",
        kind="saturation", package="torch", affected="2.5.1+cpu", fixed="2.13.0+cpu",
        trigger="torch._int_mm on x86 without AVX512-VNNI: oneDNN's int16 pair sums overflow on full-range "
                "int8 (fixed by pytorch PR 136942: oneDNN only with avx512_vnni)",
        selection=("conformance/test_specs.py",), kernels=("torch.int_mm",), needs_torch=True,
        notes="the affected releases exist for cp311 only as CUDA builds; the oneDNN cap route "
              "(conformance/known_defects.py, torch 2.11 with ONEDNN_MAX_CPU_ISA on a VNNI host) needs a "
              "VNNI host and a torch 2.11 CPU build, neither of which is here"),
    Entry(
        id="ggml-7311-iq4nl-nan-scales",
        link="https://github.com/ggml-org/llama.cpp/issues/7311",
        kind="scale underflow", package="llama-cpp-python", affected="0.2.74", fixed="0.2.76",
        trigger="IQ4_NL and K-quant quantizers give NaN scales when a block's max |x| is tiny but not zero "
                "(fixed by llama.cpp PR 7313, GROUP_MAX_EPS); 0.2.74 bundles llama.cpp b228aba, before it",
        selection=("conformance/test_ggml.py", "-k", "test_quantize and (iq4_nl or q2_k or q3_k or q4_k or q5_k "
                   "or q6_k or iq4_xs)"),
        kernels=("ggml.quantize",),
        fixed_not_run="a second source build of llama-cpp-python (about 8 minutes on 2 cores) is left out; "
                      "one old build per zoo run",
        gap="the libggml adapter loads only the split libggml-base/libggml-cpu layout (llama-cpp-python "
            "0.3.x); releases that link ggml into libllama cannot be judged"),
    Entry(
        id="fbgemm-44939-u8s8-int16-pairs",
        link="https://github.com/pytorch/pytorch/issues/44939",
        kind="saturation", package="torch", affected="2.13.0+cpu", fixed=None, expected="known",
        trigger="quantized.linear_dynamic (fbgemm) without reduce_range on a host without VNNI: vpmaddubsw "
                "int16 pair sums saturate; reduce_range is the documented remedy",
        selection=("conformance/test_pytorch_linear_dynamic.py", "-k", "int16_pairs and fbgemm"),
        kernels=("torch.quantized.linear_dynamic.fbgemm",), needs_torch=True,
        known_pattern=r'"int16_pairs": true'),
    Entry(
        id="mlas-16105-u8s8-int16-pairs",
        link="https://github.com/microsoft/onnxruntime/issues/16105",
        kind="saturation", package="onnxruntime", affected="1.32.0", fixed=None, expected="known",
        trigger="MLAS u8 x s8 kernels on x64 without VNNI sum adjacent products in saturating int16 "
                "(session option session.x64quantprecision is the remedy)",
        selection=(_INT8, "-k", "matmulinteger_u8s8 and k257"), kernels=("onnxruntime.*",), requirements=_ORT,
        known_pattern=r'"model": "u8s8_int16_pairs"'),
    Entry(
        id="ort-19109-uint8-matmul-cpu-specific",
        link="https://github.com/microsoft/onnxruntime/issues/19109",
        kind="ISA path", package="onnxruntime", affected="1.32.0", fixed=None, expected="known",
        trigger="a one-node UINT8 quantized MatMul is right on a Zen 4 (AVX512-VNNI) and wrong on a "
                "Threadripper 2950X (AVX2, no VNNI): the u8 x s8 int16 pair path of MLAS",
        selection=(_INT8, "-k", "qlinearmatmul_u8s8 or matmulintegertofloat_u8s8"), kernels=("onnxruntime.*",),
        requirements=_ORT, known_pattern=r'"model": "u8s8_int16_pairs"',
        notes="the report was closed as stale; the behaviour is the by-design one of onnxruntime issue 16105"),
    Entry(
        id="ort-27412-matmulnbits-prepack-scales",
        link="https://github.com/microsoft/onnxruntime/pull/27412",
        kind="layout", package="onnxruntime", affected="1.24.2", fixed="1.24.3",
        trigger="MatMulNBits PrePack counted the scales' elements wrongly (possible crash); cherry-picked "
                "into 1.24.3",
        selection=(_MNB, "-k", "not every_block_size and not runtime_zp"), kernels=("onnxruntime.matmulnbits",),
        requirements=_ORT,
        notes="the fix (matmul_nbits.cc, MatMulNBits<MLFloat16>::PrePack for input B) replaces B's element "
              "count, tensor.Shape().Size() = N * blocks * block*bits/8, by scales->Shape().Size() = N * blocks "
              "when converting the float16 scales to float32; 1.24.2 allocates the larger count too, so it reads "
              "past the scales and keeps the first N * blocks values, which are right. The branch runs only when "
              "MlasQNBitGemmScalesPacked() is true, which qnbitgemm.cpp answers only on ARM64 (4-bit, "
              "accuracy_level 4, KleidiAI's packed path). Here 1.24.2 and 1.24.3 return identical bytes for a "
              "float16 model (N = K = 4096, block 32, 4-bit, accuracy_level 4 with and without zero points, "
              "0 with them) and grow by the same 25.9 MB creating the session, where the branch would allocate 32 MiB "
              "(B's count of floats) instead of 2 MiB. Left out of this selection: the block-size sweep (1.24.x "
              "also has the block >= 512 defect of onnxruntime issue 28551) and zero points fed at run time (at accuracy_level 4, 1.24 through "
              "1.32 compute with the default zero point instead), either of which would stand in for this one",
        gap="none from outside on x86-64, where the branch never runs; on ARM64 only as a crash or an "
            "AddressSanitizer report, never as a wrong output. test_matmulnbits_fp16 (fp16 A, scales and Y, bits 4 "
            "and 8, accuracy_level 0 and 4) reaches MatMulNBits<MLFloat16>::PrePack and passes on both"),
    Entry(
        id="ort-32452-fp16-quantizelinear-truncates",
        link="https://github.com/microsoft/onnxruntime/pull/32452",
        kind="rounding", package="onnxruntime", affected="1.29.0", fixed="1.32.0",
        trigger="QuantizeLinear with float16 input on the CPU EP truncates x/scale toward zero instead of "
                "rounding to nearest even (onnxruntime issue 18576); 1.32.0 rounds [0.0500183, -0.0500183] / "
                "0.0999756 to [1, -1] here",
        selection=(_INT8, "-k", "quantizelinear"), kernels=("onnxruntime.*",), requirements=_ORT,
        gap="the QuantizeLinear family (test_quantizelinear against oracle.gemm.mlas_int8.quantize_linear) "
            "covers fp32 and fp16 input, u8 and s8 output, zero points 0/128/-3, per-tensor and per-axis "
            "(axis 0 and the last axis) scales, exact ties at every half step with one ulp either side, "
            "saturation, signed zeros and subnormal inputs; bf16 input, int4 output and blocked scales "
            "are not covered yet"),
]
