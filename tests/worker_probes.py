"""Misbehaving 'kernels' for tests/test_worker.py: each fails the way real kernels have."""
import ctypes
import os
import time

import numpy as np


def double(x: np.ndarray) -> np.ndarray:
    print("chatter on stdout, as ONEDNN_VERBOSE does")
    return x * 2


def segfault() -> None:
    ctypes.string_at(0)


def abort() -> None:
    os.abort()


def hang() -> None:
    time.sleep(3600)


def raise_error() -> None:
    raise RuntimeError("unsupported group size")


def getenv(name: str) -> str | None:
    return os.environ.get(name)
