from .gc_block import GCBlock
from .local_relation import LocalRelation2d
from .non_local import NonLocalBlock
from .se_block import SEBlock

__all__ = ['GCBlock', 'LocalRelation2d', 'NonLocalBlock', 'SEBlock']
