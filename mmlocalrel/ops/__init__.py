"""Custom ops: functional API -> autograd Function -> compiled kernel or pure-PyTorch reference (see dispatch.py)."""
from .dispatch import extension_status, has_kernel
from .lip2d import lip2d, lip2d_reference
from .local_relation import local_aggregation, local_relation
from .region_conv import region_conv, region_conv_reference

__all__ = [
    'extension_status', 'has_kernel', 'lip2d', 'lip2d_reference', 'local_aggregation', 'local_relation', 'region_conv',
    'region_conv_reference'
]
