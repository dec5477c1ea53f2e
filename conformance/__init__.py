"""The conformance suite users run: `pytest conformance`. Kernels judged against the oracle."""
