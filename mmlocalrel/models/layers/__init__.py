from .drconv import DRConv2d
from .gc_block import GCBlock

__all__ = ['GCBlock']
__all__ += ['DRConv2d']
