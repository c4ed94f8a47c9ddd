from . import backbones, layers  # noqa: F401  (registers into mmengine's root MODELS)
from .layers import *  # noqa: F401,F403
