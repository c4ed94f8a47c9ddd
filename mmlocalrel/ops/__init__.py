"""Custom ops: functional API -> autograd Function -> compiled kernel or pure-PyTorch reference (see dispatch.py)."""
from .dispatch import extension_status, has_kernel
from .region_conv import region_conv, region_conv_reference

__all__ = ['extension_status', 'has_kernel']
__all__ += ['region_conv', 'region_conv_reference']
