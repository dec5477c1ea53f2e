"""qoracle's referee: bit-exact numpy models of quantization formats and conventions.

The oracle imports numpy and ml_dtypes only, never torch or triton, so that it stays
independent of every kernel it judges.
"""
from oracle.formats import Format, dequantize, format_names, get_format, quantize

__all__ = ["Format", "dequantize", "format_names", "get_format", "quantize"]
