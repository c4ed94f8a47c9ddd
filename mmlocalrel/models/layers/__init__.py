from .drconv import DRConv2d
from .gc_block import GCBlock
from .lip import LIP2d, LIPBottleneckLogit, LIPProjectionLogit, LIPSimplifiedLogit
from .local_relation import LocalRelation2d
from .non_local import NonLocalBlock
from .se_block import SEBlock

__all__ = [
    'DRConv2d', 'GCBlock', 'LIP2d', 'LIPBottleneckLogit', 'LIPProjectionLogit', 'LIPSimplifiedLogit',
    'LocalRelation2d', 'NonLocalBlock', 'SEBlock'
]
