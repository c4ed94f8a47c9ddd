import pytest
import torch
from mmengine.optim import build_optim_wrapper

import mmlocalrel  # noqa: F401


def test_cpu_autocast_runs_forward_in_bf16_and_steps():
    model = torch.nn.Linear(8, 4)
    wrapper = build_optim_wrapper(model, dict(type='CPUAutocastOptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 8))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype must be 'bfloat16' or 'float16'"):
        build_optim_wrapper(torch.nn.Linear(2, 2), dict(type='CPUAutocastOptimWrapper', dtype='int8',
                                                        optimizer=dict(type='SGD', lr=0.1)))
