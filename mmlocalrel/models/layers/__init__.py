from .gc_block import GCBlock

__all__ = ['GCBlock']
