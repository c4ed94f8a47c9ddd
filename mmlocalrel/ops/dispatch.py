"""Backend dispatch shared by every op: the compiled kernels when they serve the tensor's device, the pure-PyTorch
reference otherwise, with one clear warning per (op, reason). Never a silent fallback.

``MMLOCALREL_OPS=reference`` forces the references (debugging, comparisons); ``MMLOCALREL_OPS=ext`` makes a missing
kernel an error instead of a fallback (CI on a box that must have the kernels).
"""
import os
import warnings
from functools import lru_cache

import torch

_MODES = ('auto', 'ext', 'reference')


def ops_mode():
    mode = os.environ.get('MMLOCALREL_OPS', 'auto')
    if mode not in _MODES:
        raise ValueError(f'MMLOCALREL_OPS must be one of {_MODES}, got {mode!r}')
    return mode


@lru_cache(maxsize=None)
def load_extension():
    """Import ``mmlocalrel._ext`` once; returns (module or None, error message or None)."""
    try:
        from mmlocalrel import _ext
        return _ext, None
    except ImportError as e:  # not built (e.g. a source checkout without `make setup`)
        return None, str(e)


def extension_status():
    ext, err = load_extension()
    if ext is None:
        return f'not built ({err})'
    return 'cpu+cuda' if ext.with_cuda else 'cpu'


@lru_cache(maxsize=None)
def _warn_once(op, reason):
    warnings.warn(f'mmlocalrel.ops.{op}: {reason}; using the pure-PyTorch reference (slower, more memory).',
                  RuntimeWarning, stacklevel=3)


@lru_cache(maxsize=None)
def has_kernel(op, device_type):
    """Whether the compiled extension registered ``op`` for ``device_type`` ('cpu', 'cuda')."""
    ext, _ = load_extension()
    key = {'cpu': 'CPU', 'cuda': 'CUDA'}.get(device_type)
    if ext is None or key is None:
        return False
    return f'mmlocalrel::{op}' in torch._C._dispatch_get_registrations_for_dispatch_key(key)


def use_kernel(op, tensor):
    """Decide, for one call, whether ``op`` runs on the compiled kernel (True) or the reference (False)."""
    mode = ops_mode()
    if mode == 'reference':
        return False
    if has_kernel(op, tensor.device.type):
        return True
    ext, err = load_extension()
    reason = (f'the extension mmlocalrel._ext is not built ({err})' if ext is None else
              f'no compiled kernel for device {tensor.device.type!r}')
    if mode == 'ext':
        raise RuntimeError(f'mmlocalrel.ops.{op}: {reason} and MMLOCALREL_OPS=ext forbids the fallback')
    _warn_once(op, reason)
    return False


def kernel(op):
    """The dispatcher entry for ``op`` (``torch.ops.mmlocalrel.<op>``)."""
    load_extension()
    return getattr(torch.ops.mmlocalrel, op)
