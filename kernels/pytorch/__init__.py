"""Adapters for PyTorch's CPU low-precision kernels (ATen, fbgemm, oneDNN), one module per kernel.

Importing this package registers every kernel below (kernels.registry); torch itself is only
imported inside the worker functions, so the test process judges without loading it.
The package is not named `torch` so that `import torch` inside it finds the real torch.
"""
from kernels.pytorch import (  # noqa: F401  (imported for their registrations)
    dyn_quant_matmul_4bit,
    int_mm,
    linear_dynamic,
    qlinear_pointwise,
    weight_int4pack_mm,
    weight_int8pack_mm,
)
from kernels.pytorch import qlinear_static  # noqa: F401  (imported for its registrations)
