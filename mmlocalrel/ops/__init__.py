"""Custom ops: functional API -> autograd Function -> compiled kernel or pure-PyTorch reference (see dispatch.py)."""
from .dispatch import extension_status, has_kernel
from .lip2d import lip2d, lip2d_reference  # noqa: F401

__all__ = ['extension_status', 'has_kernel']
