__all__ = []
from .lr_net import LRNet  # noqa: E402
__all__ += ['LRNet']
