from .gc_block import GCBlock

__all__ = ['GCBlock']
from .local_relation import LocalRelation2d  # noqa: E402
__all__ += ['LocalRelation2d']
