from .gc_block import GCBlock
from .non_local import NonLocalBlock
from .se_block import SEBlock

__all__ = ['GCBlock', 'NonLocalBlock', 'SEBlock']
