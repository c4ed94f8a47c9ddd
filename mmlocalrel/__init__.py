"""mmlocalrel: GC, SE, Non-local, DRConv, LIP and Local Relation blocks for mmdet / mmseg.

Importing the package registers every block, backbone, conv type, dataset and hook into mmengine's root registries
(``custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)`` in a config does it).
"""
from .version import __version__
from . import utils  # noqa: F401  (torch.load compatibility for mmengine checkpoints; must precede model loading)
from . import ops  # noqa: F401
from . import models  # noqa: F401
from . import datasets  # noqa: F401
from . import engine  # noqa: F401

__all__ = ['__version__']
