"""Let mmengine 0.10.x read its own checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7 calls ``torch.load`` without the
argument, and its checkpoints hold more than tensors (message hub, numpy scalars, dataset meta), so ``--resume``,
``load_from`` and ``tools/test.py CONFIG CKPT`` all fail. We wrap every loader registered with mmengine's
``CheckpointLoader`` (its extension point for checkpoint schemes) so that, inside mmengine's loading only, an
unspecified ``weights_only`` means False, as it did when mmengine was written. Checkpoints are code: load only
files you trust, exactly as before torch 2.6.
"""
import functools
import os
import threading
import warnings

from mmengine.runner.checkpoint import CheckpointLoader

_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'  # read by torch.load at each call, only when weights_only is unset
_lock = threading.RLock()


def _trusting(loader):
    if getattr(loader, '_mmlocalrel_trusting', False):
        return loader

    @functools.wraps(loader)
    def load(*args, **kwargs):
        with _lock:
            old = os.environ.get(_ENV)
            os.environ[_ENV] = '1'
            try:
                with warnings.catch_warnings():
                    # torch announces the variable at each load; here it is deliberate, not a stray setting
                    warnings.filterwarnings('ignore', message='Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
                    return loader(*args, **kwargs)
            finally:
                if old is None:
                    del os.environ[_ENV]
                else:
                    os.environ[_ENV] = old

    load._mmlocalrel_trusting = True
    return load


def patch_checkpoint_loaders():
    """Wrap every registered mmengine checkpoint scheme (idempotent)."""
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        CheckpointLoader.register_scheme(prefix, _trusting(loader), force=True)
