"""Custom ops: functional API -> autograd Function -> compiled kernel or pure-PyTorch reference (see dispatch.py)."""
from .dispatch import extension_status, has_kernel

__all__ = ['extension_status', 'has_kernel']
from .local_relation import local_aggregation, local_relation  # noqa: E402
__all__ += ['local_aggregation', 'local_relation']
