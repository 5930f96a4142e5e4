"""Shared fixtures. Tests on real data use `shared_data`: the project's `../shared/data` folder
(or $CNNLAB_SHARED_DATA). They skip when it is absent (a user's machine) and fail instead when
CNNLAB_REQUIRE_SHARED_DATA=1 (CI), so a missing folder can never hide them there."""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("CNNLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CNNLAB_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"CNNLAB_REQUIRE_SHARED_DATA=1 but {SHARED_DATA} does not exist")
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def pretrained_like():
    """A factory: zoo model `name` with seeded random weights and non-trivial batch-norm statistics,
    so that tests of transfer and export notice any statistic that gets lost or reset."""
    import torch
    from torch import nn

    import cnnlab

    def build(name: str, **kwargs):
        torch.manual_seed(0)
        model = cnnlab.create(name, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        return model

    return build
