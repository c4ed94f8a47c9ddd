from .gc_block import GCBlock
from .lip import LIP2d, LIPBottleneckLogit, LIPProjectionLogit, LIPSimplifiedLogit
from .non_local import NonLocalBlock
from .se_block import SEBlock

__all__ = [
    'GCBlock', 'LIP2d', 'LIPBottleneckLogit', 'LIPProjectionLogit', 'LIPSimplifiedLogit', 'NonLocalBlock', 'SEBlock'
]
