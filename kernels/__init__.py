"""Adapters that drive shipped low-precision kernels, so conformance/ can judge them against oracle/.

Each adapter lives in a module named for the library it drives (kernels/ggml/ for libggml ...).
An adapter may use oracle's conventions to lay out inputs; oracle never imports kernels.
"""
