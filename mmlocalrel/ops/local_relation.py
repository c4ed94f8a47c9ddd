"""Local relation (Hu et al., "Local Relation Networks for Image Recognition", ICCV 2019).

``local_relation(query, key, value, geo_prior, kernel_size=7, stride=1, dilation=1, composability='squared_diff')``

- ``query`` (B, G, H_out, W_out) and ``key`` (B, G, H, W): one scalar embedding per channel group. ``value``
  (B, C, H, W) with C divisible by G; channel c belongs to group ``c // (C // G)`` (contiguous blocks of C / G = m
  channels share one set of weights). ``geo_prior`` (G, k*k): the geometric prior per group and tap (row-major
  taps, tap ``ty * k + tx`` is the offset ``(ty - k//2, tx - k//2) * dilation``).
- H_out = ceil(H / stride), W_out = ceil(W / stride): the window of output pixel p' is centred on p' * stride.
- For each tap whose input pixel p = p' * stride + (tap - k//2) * dilation lies inside the image:
  ``logit = A(query[p'], key[p]) + geo_prior[tap]`` with A = -(q - k)^2 ('squared_diff'), -|q - k| ('abs_diff')
  or q * k ('dot'), the paper's three composability forms. Taps outside the image take no part (excluded from the
  softmax, not zero-padded). ``w = softmax`` over the in-image taps; ``out[c, p'] = sum w * value[c, p]``.
- Returns (B, C, H_out, W_out).

``local_aggregation(weights, value, kernel_size=7, stride=1, dilation=1)`` is the aggregation alone, with given
weights (B, G, k*k, H_out, W_out): ``out[c, p'] = sum_tap weights[g(c), tap, p'] * value[c, p]``, taps outside the
image reading zero (their weights get zero gradient).

The compiled kernels (ops/cpu/local_relation.cpp, ops/cuda/local_relation.cu) compute the weights inside the kernel
(softmax in fp32 or better, max-subtracted) and aggregate directly, so neither the unfolded value (k*k times the
input) nor the weight tensor ((k*k / m) times the input) is ever allocated; the backward recomputes the weights from
the saved log-sum-exp and gathers (no atomics, deterministic). The ``*_reference`` functions below are the plain
unfold implementations: the tests' oracle and the fallback where no kernel is built.
"""
import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from . import dispatch

COMPOSABILITIES = ('squared_diff', 'abs_diff', 'dot')


def _check_int(op, name, value, minimum=1, odd=False):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (odd and value % 2 == 0):
        what = 'an odd int >= 1' if odd else f'an int >= {minimum}'
        raise ValueError(f'{op}: {name} must be {what}, got {value!r}')


def _check_tensor(op, name, t, dims, layout):
    if not isinstance(t, torch.Tensor):
        raise ValueError(f'{op}: {name} must be a tensor {layout}, got {type(t).__name__}')
    if t.dim() != dims:
        raise ValueError(f'{op}: {name} must be {dims}-D {layout}, got shape {tuple(t.shape)}')


def _check_like(op, name, t, value, expected, layout):
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f'{op}: {name} must have shape {layout} = {tuple(expected)} for value of shape '
                         f'{tuple(value.shape)}, got {tuple(t.shape)}')
    if t.dtype != value.dtype:
        raise ValueError(f'{op}: {name} must have the dtype of value ({value.dtype}), got {t.dtype}')
    if t.device != value.device:
        raise ValueError(f'{op}: {name} must be on the device of value ({value.device}), got {t.device}')


def output_size(size, stride):
    """H_out for an input size H: windows are centred on p' * stride, so ceil(H / stride)."""
    return (size - 1) // stride + 1


def _check_common(op, value, kernel_size, stride, dilation):
    _check_int(op, 'kernel_size', kernel_size, odd=True)
    _check_int(op, 'stride', stride)
    _check_int(op, 'dilation', dilation)
    _check_tensor(op, 'value', value, 4, '(B, C, H, W)')


def check_local_relation_args(query, key, value, geo_prior, kernel_size, stride, dilation, composability):
    op = 'local_relation'
    if composability not in COMPOSABILITIES:
        raise ValueError(f'{op}: composability must be one of {COMPOSABILITIES}, got {composability!r}')
    _check_common(op, value, kernel_size, stride, dilation)
    _check_tensor(op, 'key', key, 4, '(B, G, H, W)')
    B, C, H, W = value.shape
    G = key.shape[1]
    if G < 1 or C % G != 0:
        raise ValueError(f'{op}: value channels C={C} must be divisible by the groups G={G} (key.shape[1])')
    _check_like(op, 'key', key, value, (B, G, H, W), '(B, G, H, W)')
    _check_tensor(op, 'query', query, 4, '(B, G, H_out, W_out)')
    _check_like(op, 'query', query, value, (B, G, output_size(H, stride), output_size(W, stride)),
                f'(B, G, ceil(H / stride), ceil(W / stride)) with stride={stride}')
    _check_tensor(op, 'geo_prior', geo_prior, 2, '(G, k*k)')
    _check_like(op, 'geo_prior', geo_prior, value, (G, kernel_size * kernel_size), '(G, k*k)')


def check_local_aggregation_args(weights, value, kernel_size, stride, dilation):
    op = 'local_aggregation'
    _check_common(op, value, kernel_size, stride, dilation)
    _check_tensor(op, 'weights', weights, 5, '(B, G, k*k, H_out, W_out)')
    B, C, H, W = value.shape
    G = weights.shape[1]
    if G < 1 or C % G != 0:
        raise ValueError(f'{op}: value channels C={C} must be divisible by the groups G={G} (weights.shape[1])')
    _check_like(op, 'weights', weights, value,
                (B, G, kernel_size * kernel_size, output_size(H, stride), output_size(W, stride)),
                f'(B, G, k*k, ceil(H / stride), ceil(W / stride)) with k={kernel_size}, stride={stride}')


# ---------------------------------------------------------------------------------------------------------------
# Pure-PyTorch references (unfold): the oracle of the tests and the fallback where no kernel is built.

def _unfold(x, kernel_size, stride, dilation):
    """(B, C, H, W) -> (B, C, k*k, H_out, W_out), zero outside the image."""
    B, C, H, W = x.shape
    cols = F.unfold(x, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2), stride=stride)
    return cols.view(B, C, kernel_size * kernel_size, output_size(H, stride), output_size(W, stride))


def appearance(query, key, composability):
    """The paper's appearance composability A(q, k), elementwise."""
    if composability == 'squared_diff':
        return -(query - key)**2
    if composability == 'abs_diff':
        return -(query - key).abs()
    return query * key


def local_relation_weights_reference(query, key, geo_prior, kernel_size=7, stride=1, dilation=1,
                                     composability='squared_diff'):
    """The aggregation weights (B, G, k*k, H_out, W_out) as the reference computes them (zero outside the image)."""
    B, G, H, W = key.shape
    keys = _unfold(key, kernel_size, stride, dilation)  # (B, G, k*k, Ho, Wo)
    inside = _unfold(key.new_ones(1, 1, H, W), kernel_size, stride, dilation) > 0.5
    logits = appearance(query.unsqueeze(2), keys, composability) + geo_prior.view(1, G, -1, 1, 1)
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32  # softmax in fp32 at least
    logits = logits.to(acc).masked_fill(~inside, float('-inf'))
    return logits.softmax(dim=2).to(key.dtype)


def local_aggregation_reference(weights, value, kernel_size=7, stride=1, dilation=1):
    check_local_aggregation_args(weights, value, kernel_size, stride, dilation)
    B, C, H, W = value.shape
    G = weights.shape[1]
    cols = _unfold(value, kernel_size, stride, dilation)  # (B, C, k*k, Ho, Wo): the k*k-times copy the kernel avoids
    cols = cols.view(B, G, C // G, *cols.shape[2:])
    out = (weights.unsqueeze(2) * cols).sum(dim=3)
    return out.reshape(B, C, *out.shape[-2:])


def local_relation_reference(query, key, value, geo_prior, kernel_size=7, stride=1, dilation=1,
                             composability='squared_diff'):
    check_local_relation_args(query, key, value, geo_prior, kernel_size, stride, dilation, composability)
    weights = local_relation_weights_reference(query, key, geo_prior, kernel_size, stride, dilation, composability)
    return local_aggregation_reference(weights, value, kernel_size, stride, dilation)


# ---------------------------------------------------------------------------------------------------------------
# Compiled path.

class LocalRelationFunction(Function):

    @staticmethod
    def forward(ctx, query, key, value, geo_prior, kernel_size, stride, dilation, composability):
        out, lse = dispatch.kernel('local_relation_forward')(query, key, value, geo_prior, kernel_size, stride,
                                                             dilation, composability)
        # The output is saved (no extra memory: it exists anyway) for delta = sum_c grad_out * out in the backward.
        ctx.save_for_backward(query, key, value, geo_prior, out, lse)
        ctx.args = (kernel_size, stride, dilation, composability)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        query, key, value, geo_prior, out, lse = ctx.saved_tensors
        grads = dispatch.kernel('local_relation_backward')(grad_out.contiguous(), query, key, value, geo_prior, out,
                                                           lse, *ctx.args)
        return (*grads, None, None, None, None)


class LocalAggregationFunction(Function):

    @staticmethod
    def forward(ctx, weights, value, kernel_size, stride, dilation):
        ctx.save_for_backward(weights, value)
        ctx.args = (kernel_size, stride, dilation)
        return dispatch.kernel('local_aggregation_forward')(weights, value, kernel_size, stride, dilation)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        weights, value = ctx.saved_tensors
        grad_w, grad_v = dispatch.kernel('local_aggregation_backward')(grad_out.contiguous(), weights, value,
                                                                      *ctx.args)
        return grad_w, grad_v, None, None, None


def local_relation(query, key, value, geo_prior, kernel_size=7, stride=1, dilation=1, composability='squared_diff'):
    """Local relation aggregation (see the module docstring for the contract). Returns (B, C, H_out, W_out)."""
    check_local_relation_args(query, key, value, geo_prior, kernel_size, stride, dilation, composability)
    if dispatch.use_kernel('local_relation_forward', value):
        return LocalRelationFunction.apply(query, key, value, geo_prior, kernel_size, stride, dilation,
                                           composability)
    return local_relation_reference(query, key, value, geo_prior, kernel_size, stride, dilation, composability)


def local_aggregation(weights, value, kernel_size=7, stride=1, dilation=1):
    """Aggregation with given weights (B, G, k*k, H_out, W_out); returns (B, C, H_out, W_out)."""
    check_local_aggregation_args(weights, value, kernel_size, stride, dilation)
    if dispatch.use_kernel('local_aggregation_forward', value):
        return LocalAggregationFunction.apply(weights, value, kernel_size, stride, dilation)
    return local_aggregation_reference(weights, value, kernel_size, stride, dilation)
