"""Mixed precision on CPU: mmengine's AmpOptimWrapper refuses to start without a GPU, so ``--amp`` on a CPU-only
machine selects this wrapper, which runs forward and loss under bf16 autocast (bf16 keeps fp32's exponent range, so
no loss scaling is needed)."""
import functools
import importlib
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


def _float32_on_cpu(fn, cast_back):
    # mmcv's CPU kernels (nms, roi_align) take float32 only, and autocast does not reach pybind ops: hand them
    # float32 copies of reduced-precision CPU tensors (the cast is differentiable, so gradients flow back as bf16).
    # cast_back: return features in the input's dtype (roi_align, whose output mmdet writes into a bf16 buffer);
    # boxes stay float32 (nms), as bf16 would round coordinates by pixels.
    if getattr(fn, '_mmlocalrel_float32', False):
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        low = [a.dtype for a in args if isinstance(a, torch.Tensor) and a.device.type == 'cpu'
               and a.dtype in (torch.bfloat16, torch.float16)]
        if not low:
            return fn(*args, **kwargs)
        out = fn(*[a.float() if isinstance(a, torch.Tensor) and a.dtype in low else a for a in args], **kwargs)
        return out.to(args[0].dtype) if cast_back else out

    call._mmlocalrel_float32 = True
    return call


def patch_mmcv_ops_for_cpu_autocast():
    """Let Mask R-CNN's mmcv ops run under CPU autocast (idempotent; float32 inputs are passed through as they are)."""
    # the modules, not mmcv.ops' re-exported functions of the same names
    nms_module = importlib.import_module('mmcv.ops.nms')
    roi_align_module = importlib.import_module('mmcv.ops.roi_align')
    nms_module.nms = _float32_on_cpu(nms_module.nms, cast_back=False)  # batched_nms looks `nms` up in this module
    roi_align_module.roi_align = _float32_on_cpu(roi_align_module.roi_align, cast_back=True)  # RoIAlign.forward calls this name


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):

    def __init__(self, *args, dtype='bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        patch_mmcv_ops_for_cpu_autocast()
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"CPUAutocastOptimWrapper: dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        self.dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.dtype):
            yield
