"""The one set of case statuses, from the oracle's comparison to the certificate.

The oracle decides the first four (oracle/verdict.py); the conformance layer adds what a kernel
did instead of answering. Every layer (results, certificates, JUnit, findings) uses these names.

SUSPECT is a warning, not a failure: the probable tier assumes independent, mean-zero rounding
errors, and the structured inputs the suite feeds on purpose (exact ties, repeated values, half
steps) break that assumption for correct fp32 kernels too (seen: 1.04x to 1.6x the tier on
onnxruntime's MatMulNBits at full profile). It is recorded and shown with its count; the
rigorous bound alone decides FAIL.
"""
from __future__ import annotations

from enum import Enum

__all__ = ["Status", "PASSING", "WARNING", "FAILING", "NOT_JUDGED"]


class Status(str, Enum):
    BIT_EXACT = "BIT_EXACT"  # equal bytes (or the modelled prediction, bit for bit)
    BOUNDED = "BOUNDED"  # every element within the derived error bound (and its probable tier)
    SUSPECT = "SUSPECT"  # inside the rigorous bound, outside the probabilistic one (a warning)
    FAIL = "FAIL"  # a byte differs, an element leaves its bound, or a refusal inside the declared space
    CRASHED = "CRASHED"  # the call died (signal, exit, hang, memory limit)
    LOAD_FAILED = "LOAD_FAILED"  # the library is installed but does not load (import error, crash, hang)
    UNSUPPORTED = "UNSUPPORTED"  # a clean refusal of an input outside the kernel's declared space
    UNAVAILABLE = "UNAVAILABLE"  # not installed here, or needs hardware this host lacks


PASSING = frozenset({Status.BIT_EXACT, Status.BOUNDED})
WARNING = frozenset({Status.SUSPECT})
FAILING = frozenset({Status.FAIL, Status.CRASHED, Status.LOAD_FAILED})
NOT_JUDGED = frozenset({Status.UNSUPPORTED, Status.UNAVAILABLE})
