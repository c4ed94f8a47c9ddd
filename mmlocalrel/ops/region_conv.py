"""region_conv: the Dynamic Region-Aware Convolution op (DRConv, Chen et al., CVPR 2021).

Contract::

    out = region_conv(x, kernels, mask, stride=1, padding=0, dilation=1, guide=None)

    x        (B, C_in, H, W)                  floating
    kernels  (B, m, C_out, C_in, kh, kw)       same dtype as x: m kernels per sample (one per region)
    mask     (B, H_out, W_out)                 integer, values in [0, m): the region of every output pixel
    guide    (B, m, H_out, W_out) or None      the paper's soft region map F^ (softmax of the guided feature)
    out      (B, C_out, H_out, W_out),         out[b, :, p] = (kernels[b, mask[b, p]] * x[b])[p]

H_out, W_out are those of a convolution with the given stride/padding/dilation. Gradients flow to x and kernels
through the hard mask. ``guide`` never changes the forward value; when given, it receives the paper's surrogate
gradient dL/dF^_t(p) = <dL/dY(p), Y_t(p)>, Y_t(p) being region t's kernel applied at p: the gradient the output
would have if it were the soft mixture sum_t F^_t(p) Y_t(p) (a straight-through estimator). Chain it through a
softmax of the guided feature F to get the paper's dL/dF = softmax'(F)^T dL/dF^.

Cost (compiled kernels): forward one convolution's multiply-adds, whatever m; backward to x and kernels one
convolution each; the guide's surrogate gradient m convolutions (it needs every region's response at every
pixel). The reference below is the all-regions form (m convolutions, then a selection): the oracle of the tests
and the fallback where no kernel is compiled.
"""
import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from . import dispatch

_OP = 'region_conv_forward'


def _pair(value, name, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f'region_conv: {name} must be an int >= {minimum} or a pair of them, got {value!r}')
    return pair


def _check(x, kernels, mask, stride, padding, dilation, guide):
    """Validate the arguments; returns (stride, padding, dilation) as pairs and the int64 mask."""
    stride = _pair(stride, 'stride', 1)
    padding = _pair(padding, 'padding', 0)
    dilation = _pair(dilation, 'dilation', 1)
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f'region_conv: x must be a 4-D tensor (B, C_in, H, W), got '
                         f'{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}')
    if not x.is_floating_point():
        raise ValueError(f'region_conv: x must be floating point, got {x.dtype}')
    B, C_in, H, W = x.shape
    if kernels.dim() != 6 or kernels.shape[0] != B or kernels.shape[3] != C_in:
        raise ValueError(f'region_conv: kernels must be (B={B}, m, C_out, C_in={C_in}, kh, kw) for x of shape '
                         f'{tuple(x.shape)}, got {tuple(kernels.shape)}')
    if kernels.dtype != x.dtype:
        raise ValueError(f'region_conv: kernels dtype {kernels.dtype} differs from x dtype {x.dtype}')
    m, _, _, kh, kw = kernels.shape[1:]
    if m < 1 or kh < 1 or kw < 1:
        raise ValueError(f'region_conv: kernels has an empty dimension, shape {tuple(kernels.shape)}')
    H_out = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    W_out = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if H_out < 1 or W_out < 1:
        raise ValueError(f'region_conv: x of shape {tuple(x.shape)} is too small for a {kh}x{kw} kernel with '
                         f'padding={padding}, dilation={dilation}')
    if mask.dim() != 3 or tuple(mask.shape) != (B, H_out, W_out):
        raise ValueError(f'region_conv: mask must be (B, H_out, W_out) = {(B, H_out, W_out)}, got '
                         f'{tuple(mask.shape)}')
    if mask.dtype.is_floating_point or mask.dtype.is_complex or mask.dtype == torch.bool:
        raise ValueError(f'region_conv: mask must be an integer tensor of region indices, got {mask.dtype}')
    if mask.numel():
        lo, hi = torch.aminmax(mask)
        if lo.item() < 0 or hi.item() >= m:
            raise ValueError(f'region_conv: mask values must lie in [0, m) = [0, {m}), got values in '
                             f'[{lo.item()}, {hi.item()}]')
    if guide is not None and (guide.dim() != 4 or tuple(guide.shape) != (B, m, H_out, W_out)
                              or not guide.is_floating_point()):
        raise ValueError(f'region_conv: guide must be a floating (B, m, H_out, W_out) = {(B, m, H_out, W_out)} '
                         f'tensor or None, got {guide.dtype} {tuple(guide.shape)}')
    return stride, padding, dilation, mask.long()


def region_conv_reference(x, kernels, mask, stride=1, padding=0, dilation=1, guide=None):
    """All-regions form (as the third-party implementations): every region's kernel at every pixel (m
    convolutions, one grouped convolution), then the mask selects. Pure PyTorch; autograd gives the gradients,
    the guide's through a straight-through one-hot (forward one-hot(mask), backward d/dF^ of sum_t F^_t Y_t)."""
    stride, padding, dilation, mask = _check(x, kernels, mask, stride, padding, dilation, guide)
    B, C_in, H, W = x.shape
    m, C_out, _, kh, kw = kernels.shape[1:]
    y = F.conv2d(x.reshape(1, B * C_in, H, W), kernels.reshape(B * m * C_out, C_in, kh, kw), None, stride,
                 padding, dilation, groups=B)
    y = y.view(B, m, C_out, *y.shape[-2:])
    select = F.one_hot(mask, m).permute(0, 3, 1, 2).to(y.dtype)  # (B, m, H_out, W_out)
    if guide is not None:
        guide = guide.to(y.dtype)
        select = select + (guide - guide.detach())  # value unchanged (exactly: a - a == 0), gradient of F^
    return (y * select.unsqueeze(2)).sum(1)


class RegionConvFunction(Function):
    """Autograd over the compiled kernels (torch.ops.mmlocalrel.region_conv_forward / _backward)."""

    @staticmethod
    def forward(ctx, x, kernels, mask, guide, stride, padding, dilation):
        x, kernels, mask = x.contiguous(), kernels.contiguous(), mask.contiguous()
        out = dispatch.kernel('region_conv_forward')(x, kernels, mask, stride, padding, dilation)
        ctx.save_for_backward(x, kernels, mask)
        ctx.geometry = (stride, padding, dilation)
        ctx.guide_dtype = None if guide is None else guide.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, kernels, mask = ctx.saved_tensors
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[3]]
        if not any(need):
            return (None, ) * 7
        grad_x, grad_kernels, grad_guide = dispatch.kernel('region_conv_backward')(
            grad_out.contiguous(), x, kernels, mask, *ctx.geometry, need)
        if grad_guide is not None:
            grad_guide = grad_guide.to(ctx.guide_dtype)
        return grad_x, grad_kernels, None, grad_guide, None, None, None


def region_conv(x, kernels, mask, stride=1, padding=0, dilation=1, guide=None):
    """Dynamic region-aware convolution; see the module docstring for the contract. Runs the compiled kernel for
    x's device when there is one, the pure-PyTorch reference otherwise (with one warning)."""
    stride, padding, dilation, mask = _check(x, kernels, mask, stride, padding, dilation, guide)
    if dispatch.use_kernel(_OP, x):
        return RegionConvFunction.apply(x, kernels, mask, guide, list(stride), list(padding), list(dilation))
    return region_conv_reference(x, kernels, mask, stride, padding, dilation, guide)
