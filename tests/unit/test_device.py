"""Unit tests for safelens.models.device.resolve_device, the package's one device default."""

from __future__ import annotations

import pytest
import torch

from safelens.errors import SafelensError
from safelens.models.device import resolve_device


def test_none_is_cuda_when_available_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device() == resolve_device(None) == torch.device(expected)


def test_names_and_devices_pass_through() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert isinstance(resolve_device("cpu"), torch.device)


def test_unknown_device_names_the_setting() -> None:
    with pytest.raises(SafelensError, match="^device 'gpu0' is not a device name"):
        resolve_device("gpu0")
    with pytest.raises(SafelensError, match="^--device 'gpu0' is not a device name"):
        resolve_device("gpu0", setting="--device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_is_refused_before_anything_loads() -> None:
    with pytest.raises(SafelensError, match="no cuda device is available"):
        resolve_device("cuda")
    with pytest.raises(SafelensError, match="no cuda device is available"):
        resolve_device(torch.device("cuda", 0))


def test_loaders_share_it() -> None:
    from safelens.models import loading
    from safelens.models.encoder import load_encoder

    assert loading.resolve_device is resolve_device  # re-exported for one release
    with pytest.raises(SafelensError, match="device 'gpu0'"):
        load_encoder(None, "gpu0")
