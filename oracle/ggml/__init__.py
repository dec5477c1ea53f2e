"""GGML block formats, one module per format, each bit-exact with ggml's C reference path.

Importing this package registers every format module in it with oracle.formats. Byte layouts
and the upstream functions they model are documented in each module; the upstream files are
ggml/src/ggml-quants.c (reference quantizers and dequantizers), ggml/src/ggml-common.h
(block structs) and ggml/src/ggml-cpu/arch/x86/quants.c (x86 SIMD paths).
"""
import importlib
import pkgutil

_HELPERS = {"fields", "tables", "kquant_search"}

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in _HELPERS and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")
