"""The convention registry, its listing, and pack/unpack/dequantize consistency for every convention."""
from __future__ import annotations

import json

import numpy as np
import pytest

import oracle.conventions as conventions
from reports.cli import main


def test_registry_lists_weights_and_activations() -> None:
    assert conventions.names("weight") and conventions.names("activation")
    with pytest.raises(ValueError, match="unknown convention"):
        conventions.get("no.such.convention")


@pytest.mark.parametrize("name", conventions.names())
@pytest.mark.parametrize("k", [96, 100])  # 100: a partial last group for group sizes 32 and 64
def test_pack_unpack_round_trip(name: str, k: int) -> None:
    conv = conventions.get(name)
    x = np.random.default_rng(k).standard_normal((6, k)).astype(np.float32)
    if conv.whole_groups_only and k % conv.group_size:
        with pytest.raises(ValueError, match="multiple"):
            conv.quantize(x)
        return
    qw = conv.quantize(x)
    back = conv.unpack({**conv.pack(qw), "k": k}, k)  # oracle.quantize adds "k" to the packed dict
    assert np.array_equal(back.codes, qw.codes)
    assert np.array_equal(back.scales.view(np.uint32), qw.scales.view(np.uint32))
    assert (back.zeros is None) == (qw.zeros is None)
    if qw.zeros is not None:
        assert np.array_equal(back.zeros, qw.zeros)
    assert np.array_equal(conv.dequantize(back).view(np.uint32), conv.dequantize(qw).view(np.uint32))


def test_cli_json_lists_every_convention(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conventions", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == conventions.names()
    assert all(r["summary"] and r["source"] for r in rows)
