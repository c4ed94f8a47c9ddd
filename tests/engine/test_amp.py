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


def test_mmcv_nms_and_roi_align_take_bf16_under_the_wrapper():
    import importlib

    from mmlocalrel.engine.amp import patch_mmcv_ops_for_cpu_autocast
    patch_mmcv_ops_for_cpu_autocast()
    nms = importlib.import_module('mmcv.ops.nms').nms
    roi_align = importlib.import_module('mmcv.ops.roi_align').roi_align
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets32, inds32 = nms(boxes, scores, 0.5)
    dets16, inds16 = nms(boxes, scores.bfloat16(), 0.5)
    assert torch.equal(inds16, inds32) and dets16.dtype == torch.float32  # boxes keep full precision
    feats = torch.randn(1, 4, 16, 16, requires_grad=True)
    rois = torch.tensor([[0., 2., 2., 12., 12.]])
    out32 = roi_align(feats, rois, (7, 7), 1.0, 0, 'avg', True)
    out16 = roi_align(feats.bfloat16(), rois, (7, 7), 1.0, 0, 'avg', True)
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), out32, atol=0.05, rtol=0.02)
    out16.float().sum().backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
