from .lip_resnet import LIPResNet  # noqa: F401
__all__ = []
