"""Mixed precision on CPU: mmengine's AmpOptimWrapper refuses to start without a GPU, so ``--amp`` on a CPU-only
machine selects this wrapper, which runs forward and loss under bf16 autocast (bf16 keeps fp32's exponent range, so
no loss scaling is needed)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):

    def __init__(self, *args, dtype='bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"CPUAutocastOptimWrapper: dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        self.dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(device_type='cpu', dtype=self.dtype):
            yield
