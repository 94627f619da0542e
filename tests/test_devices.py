"""Device strings checked against the machine: one line with the valid forms or `--device cpu` (issue 16)."""

from __future__ import annotations

import pytest
import torch

from a124_core import devices
from a124_core.devices import resolve_device


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(devices, "_cuda_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(devices, "_cuda_count", lambda: 2)


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message and all(p in message for p in parts), message


def test_default_and_cpu(no_cuda):
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_cuda_without_cuda_offers_cpu(no_cuda):
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError) as err:
            resolve_device(name)
        _one_line(err, repr(name), "CUDA is not available", "--device cpu")


@pytest.mark.parametrize("name", ["gpu0", "gpu", "cuda0", "cuda:", "cuda:-1", "0", "", "cpu:1"])
def test_unknown_forms_list_the_valid_ones(no_cuda, name):
    with pytest.raises(ValueError) as err:
        resolve_device(name, flag="device")
    _one_line(err, "device", repr(name))
    if name != "cpu:1":
        _one_line(err, "cpu, cuda, cuda:N")


def test_gpu_index_in_range(two_gpus):
    assert resolve_device(None) == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError) as err:
        resolve_device("cuda:2")
    _one_line(err, "2 CUDA GPU(s)", "cuda:0 to cuda:1")


def test_mps_only_where_available(monkeypatch):
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS backend is not available"):
        resolve_device("mps")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the real answer of a machine without CUDA")
def test_this_machine_without_cuda():
    with pytest.raises(ValueError, match="rerun with --device cpu"):
        resolve_device("cuda")
