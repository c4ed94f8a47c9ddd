from .gc_block import GCBlock
from .lip import LIP2d, LIPBottleneckLogit, LIPProjectionLogit, LIPSimplifiedLogit  # noqa: F401

__all__ = ['GCBlock']
