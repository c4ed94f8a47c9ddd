"""LIP: Local Importance-based Pooling (Gao, Wang, Wu; ICCV 2019), as one fused op.

Contract of ``lip2d(x, logit, kernel_size=3, stride=2, padding=1)``:

* ``x`` and ``logit`` are (B, C, H, W) with the same shape; ``logit`` is the log-importance of every element.
* ``out[b, c, o] = sum_{i in W(o)} x_i exp(logit_i) / sum_{i in W(o)} exp(logit_i)``, where ``W(o)`` is the
  ``F.avg_pool2d`` window of output ``o`` (same kernel_size, stride, padding, ``ceil_mode=False``) clipped to the
  image: taps in the padding count in neither sum. The output size is exactly ``F.avg_pool2d``'s, odd sizes
  included.
* Numerically safe: the window maximum of ``logit`` is subtracted before ``exp`` (the paper's logits reach 12 and
  more; ``exp(12)`` overflows fp16), and fp16/bf16 inputs accumulate in fp32. Under autocast, ``x`` and ``logit``
  may arrive in different dtypes; both are promoted to the wider one.
* Differentiable in ``x`` and ``logit``. Compiled kernels (CPU and CUDA; the backward gathers without atomics, so
  it is deterministic) when they serve the tensors' device, else the pure-PyTorch :func:`lip2d_reference` with
  one warning (see :mod:`mmlocalrel.ops.dispatch`).
"""
import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from . import dispatch

__all__ = ['lip2d', 'lip2d_reference', 'check_geometry']


def check_geometry(owner, kernel_size, stride, padding):
    """Validate the window arguments; returns (kernel_size, stride, padding) as pairs of ints."""
    pairs = []
    for name, value, low in (('kernel_size', kernel_size, 1), ('stride', stride, 1), ('padding', padding, 0)):
        pair = _pair(value)
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in pair):
            raise ValueError(f'{owner}: {name} must be an int >= {low} or a pair of them, got {value!r}')
        pairs.append(tuple(pair))
    kernel_size, stride, padding = pairs
    if any(2 * p > k for p, k in zip(padding, kernel_size)):
        raise ValueError(f'{owner}: padding must be <= kernel_size / 2, got padding={padding} for '
                         f'kernel_size={kernel_size}')
    return kernel_size, stride, padding


def _check(x, logit, kernel_size, stride, padding):
    """Validate the arguments; returns (kernel_size, stride, padding) as pairs."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f'lip2d: x must be a 4-D tensor (B, C, H, W), got '
                         f'{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}')
    if not isinstance(logit, torch.Tensor) or logit.shape != x.shape:
        got = tuple(logit.shape) if isinstance(logit, torch.Tensor) else type(logit).__name__
        raise ValueError(f'lip2d: logit must have the shape of x {tuple(x.shape)}, got {got}')
    if not (x.is_floating_point() and logit.is_floating_point()):
        raise ValueError(f'lip2d: x and logit must be floating point, got {x.dtype} and {logit.dtype}')
    if logit.device != x.device:
        raise ValueError(f'lip2d: logit is on {logit.device}, x on {x.device}')
    kernel_size, stride, padding = check_geometry('lip2d', kernel_size, stride, padding)
    if any(n + 2 * p < k for n, p, k in zip(x.shape[2:], padding, kernel_size)):
        raise ValueError(f'lip2d: kernel_size={kernel_size} with padding={padding} gives an empty output for an '
                         f'input of spatial size {tuple(x.shape[2:])}')
    return kernel_size, stride, padding


def _promote(x, logit):
    dtype = torch.promote_types(x.dtype, logit.dtype)
    return x.to(dtype), logit.to(dtype)


def lip2d_reference(x, logit, kernel_size=3, stride=2, padding=1):
    """Pure-PyTorch LIP: the test oracle and the fallback where no kernel serves the device.

    Same contract as :func:`lip2d`. The window taps are gathered as strided views of the padded inputs (logits
    padded with -inf, so padding taps weigh exactly 0), stacked (``kernel_size**2 / stride**2`` times the input in
    memory), and the window maximum is subtracted as in the kernels; fp16/bf16 compute in fp32.
    """
    kernel_size, stride, padding = _check(x, logit, kernel_size, stride, padding)
    x, logit = _promote(x, logit)
    dtype = x.dtype
    acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    OH, OW = ((n + 2 * p - k) // s + 1 for n, k, s, p in zip(x.shape[2:], kernel_size, stride, padding))
    xp = F.pad(x.to(acc), (pw, pw, ph, ph))
    lp = F.pad(logit.to(acc), (pw, pw, ph, ph), value=float('-inf'))

    def taps(t):  # (B, C, kh * kw, OH, OW)
        return torch.stack([t[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
                            for i in range(kh) for j in range(kw)], dim=2)

    ls = taps(lp)
    # The shift cancels between numerator and denominator: no gradient flows through it.
    e = torch.exp(ls - ls.amax(dim=2, keepdim=True).detach())
    out = (e * taps(xp)).sum(dim=2) / e.sum(dim=2)
    return out.to(dtype)


class Lip2dFunction(Function):

    @staticmethod
    def forward(ctx, x, logit, kernel_size, stride, padding):
        out, lse = dispatch.kernel('lip2d_forward')(x, logit, kernel_size, stride, padding)
        ctx.save_for_backward(x, logit, out, lse)
        ctx.geometry = (kernel_size, stride, padding)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, logit, out, lse = ctx.saved_tensors
        grad_x, grad_logit = dispatch.kernel('lip2d_backward')(grad_out.contiguous(), x, logit, out, lse,
                                                               *ctx.geometry)
        return grad_x, grad_logit, None, None, None


def lip2d(x, logit, kernel_size=3, stride=2, padding=1):
    """LIP pooling of ``x`` weighted by ``exp(logit)`` over ``avg_pool2d`` windows (see the module docstring).

    Args:
        x (Tensor): (B, C, H, W) features.
        logit (Tensor): (B, C, H, W) log-importance, same shape as ``x``.
        kernel_size, stride, padding (int | tuple[int, int]): the window, as ``F.avg_pool2d``;
            ``padding <= kernel_size / 2``.

    Returns:
        Tensor: (B, C, H_out, W_out), ``F.avg_pool2d``'s output size.
    """
    kernel_size, stride, padding = _check(x, logit, kernel_size, stride, padding)
    x, logit = _promote(x, logit)
    if not dispatch.use_kernel('lip2d_forward', x):
        return lip2d_reference(x, logit, kernel_size, stride, padding)
    return Lip2dFunction.apply(x, logit, kernel_size, stride, padding)
