from .checkpoint import patch_checkpoint_loaders

patch_checkpoint_loaders()

__all__ = ['patch_checkpoint_loaders']
