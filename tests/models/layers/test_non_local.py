import pytest
import torch
from mmcv.cnn.bricks.non_local import NonLocal1d, NonLocal2d, NonLocal3d
from mmengine.registry import MODELS
from torch.nn.attention import SDPBackend, sdpa_kernel

import mmlocalrel  # noqa: F401  (registers the blocks)
from mmlocalrel.models.layers import NonLocalBlock
from mmlocalrel.models.layers.non_local import MODES, _ConcatenationAttention

MMCV = {1: NonLocal1d, 2: NonLocal2d, 3: NonLocal3d}
SHAPES = {1: (2, 16, 21), 2: (2, 16, 6, 9), 3: (2, 16, 3, 4, 6)}  # odd sizes: sub-sampling floors


def _randomise(module, std=0.2):
    # Random weights everywhere (conv_out included): the zero-initialised output would hide any difference.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
        for name, b in module.named_buffers():
            if name.endswith('running_var'):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
            elif name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype) * 0.1)
    return module


def _pair(dim, mode, sub_sample, use_scale=True, norm_cfg=None, chunk_size=None, dtype=torch.float32):
    ref = _randomise(MMCV[dim](16, mode=mode, sub_sample=sub_sample, use_scale=use_scale, norm_cfg=norm_cfg))
    ours = NonLocalBlock(16, mode=mode, sub_sample=sub_sample, use_scale=use_scale, norm_cfg=norm_cfg, dim=dim,
                         chunk_size=chunk_size)
    ours.load_state_dict(ref.state_dict())  # strict: same keys and shapes
    return ref.to(dtype).eval(), ours.to(dtype).eval()


@pytest.mark.parametrize('dim', (1, 2, 3))
@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', (False, True))
@pytest.mark.parametrize('use_scale', (False, True))
def test_forward_matches_mmcv(dim, mode, sub_sample, use_scale):
    ref, ours = _pair(dim, mode, sub_sample, use_scale, chunk_size=5)  # 5 does not divide N: a ragged last chunk
    assert ours.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(SHAPES[dim], generator=torch.Generator().manual_seed(0))
    expected = ref(x)
    assert (expected - x).abs().max() > 1e-2  # the block does something: the comparison is not x vs x
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)


def test_forward_matches_mmcv_with_norm():
    ref, ours = _pair(2, 'embedded_gaussian', True, norm_cfg=dict(type='BN'))
    x = torch.randn(SHAPES[2])
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def _trainable_concatenation(ref):
    # mmcv's concatenation cannot run backward: it divides its (in-place) ReLU's output in place, and autograd
    # raises. The same explicit (2C' x N x Nk) form with an out-of-place division is the oracle instead.
    def concatenation(theta_x, phi_x):
        h, w = theta_x.size(2), phi_x.size(3)
        pairs = torch.cat([theta_x.repeat(1, 1, 1, w), phi_x.repeat(1, 1, h, 1)], dim=1)
        return ref.concat_project(pairs).view(theta_x.size(0), h, w) / w

    ref.concatenation = concatenation


def test_mmcv_concatenation_cannot_backward():
    ref, _ = _pair(2, 'concatenation', False)
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        ref(torch.randn(SHAPES[2], requires_grad=True)).sum().backward()


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', (False, True))
def test_gradients_match_explicit_form(mode, sub_sample):
    # mmcv's explicit N x N form is the oracle; float64 so the comparison is tight.
    ref, ours = _pair(2, mode, sub_sample, chunk_size=7, dtype=torch.float64)
    if mode == 'concatenation':
        _trainable_concatenation(ref)
    x = torch.randn(SHAPES[2], dtype=torch.float64)
    grad_out = torch.randn(SHAPES[2], dtype=torch.float64)
    grads = []
    for module in (ref, ours):
        xi = x.clone().requires_grad_()
        module.zero_grad()
        module(xi).backward(grad_out)
        grads.append([xi.grad] + [p.grad for p in module.parameters()])
    for ours_grad, ref_grad in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-9, atol=1e-10)


def test_concatenation_gradcheck():
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(2, 11, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(2, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    g = torch.randn(2, 3, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, g: _ConcatenationAttention.apply(a, b, g, 4), (a, b, g))


@pytest.mark.parametrize('mode', MODES)
def test_no_pairwise_matrix_saved_for_backward(mode):
    # What autograd keeps for backward is the training-time memory: no tensor of N x Nk elements may be among it.
    # mmcv's form does keep one (checked below, so the test can tell).
    ref, ours = _pair(2, mode, False)
    if mode == 'concatenation':
        _trainable_concatenation(ref)
    x = torch.randn(2, 16, 24, 24, requires_grad=True)
    pairs = 2 * (24 * 24)**2

    def largest_saved(module):
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            module(x).sum().backward()
        return max(sizes)

    assert largest_saved(ref) >= pairs
    assert largest_saved(ours) < pairs // 16


@pytest.mark.parametrize('mode', ('gaussian', 'embedded_gaussian'))
@pytest.mark.parametrize('sub_sample', (False, True))
def test_softmax_modes_run_fused_attention_on_cpu(mode, sub_sample):
    # Only the flash kernel allowed: raises 'No available kernel' if the inputs made SDPA fall back to its math
    # path (which materialises N x N), e.g. unequal query/value widths in 'gaussian' without the padding.
    _, ours = _pair(2, mode, sub_sample)
    x = torch.randn(SHAPES[2], requires_grad=True)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        ours(x).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', (False, True))
def test_attention_map_rows(mode, sub_sample):
    ref, ours = _pair(2, mode, sub_sample)
    x = torch.randn(SHAPES[2])
    n = x.shape[0]
    # mmcv's pairwise matrix, built the way its forward builds it
    g_x = ref.g(x)
    if mode == 'gaussian':
        theta = x.view(n, 16, -1).permute(0, 2, 1)
        phi = (ref.phi(x) if sub_sample else x).view(n, 16, -1)
    elif mode == 'concatenation':
        theta = ref.theta(x).view(n, 8, -1, 1)
        phi = ref.phi(x).view(n, 8, 1, -1)
    else:
        theta = ref.theta(x).view(n, 8, -1).permute(0, 2, 1)
        phi = ref.phi(x).view(n, 8, -1)
    full = getattr(ref, mode)(theta, phi)  # (B, N, Nk)
    queries = [0, 17, 53]
    rows = ours.attention_map(x, queries)
    key_shape = ours.key_shape(x.shape[2:])
    assert key_shape == ((3, 4) if sub_sample else (6, 9)) == tuple(g_x.shape[2:])
    assert rows.shape == (2, 3, key_shape[0] * key_shape[1])
    torch.testing.assert_close(rows, full[:, queries], rtol=0, atol=1e-6)
    if mode in ('gaussian', 'embedded_gaussian'):
        torch.testing.assert_close(rows.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(ours.attention_map(x, 17), full[:, [17]], rtol=0, atol=1e-6)


def test_attention_map_bad_query():
    block = NonLocalBlock(16)
    x = torch.randn(SHAPES[2])
    for bad in (54, -1, []):
        with pytest.raises(ValueError, match=r'query_index must hold flat positions in \[0, 54\)'):
            block.attention_map(x, bad)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('norm_cfg', (None, dict(type='BN')))
def test_new_block_is_identity(mode, norm_cfg):
    block = NonLocalBlock(16, mode=mode, norm_cfg=norm_cfg).eval()
    x = torch.randn(SHAPES[2])
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    assert block.g.conv.weight.std() > 0  # the embeddings are initialised, only the output is zero


@pytest.mark.parametrize('dim', (1, 3))
def test_default_conv_per_dim(dim):
    block = NonLocalBlock(16, dim=dim, sub_sample=True)
    assert isinstance(block.g[0].conv, getattr(torch.nn, f'Conv{dim}d'))
    assert isinstance(block.g[1], getattr(torch.nn, f'MaxPool{dim}d'))


def test_registered():
    block = MODELS.build(dict(type='NonLocalBlock', in_channels=16, mode='dot_product'))
    assert isinstance(block, NonLocalBlock) and block.mode == 'dot_product'


@pytest.mark.parametrize('kwargs, match', [
    (dict(mode='softmax'), r"mode must be one of \('gaussian', 'embedded_gaussian', 'dot_product', "
                           r"'concatenation'\), got 'softmax'"),
    (dict(reduction=32), r'reduction=32 gives 16 // 32 = 0 embedding channels; reduction must be <= in_channels'),
    (dict(reduction=0), 'reduction must be a positive int'),
    (dict(dim=4), r'dim must be one of \(1, 2, 3\), got 4'),
    (dict(dim=3, conv_cfg=dict(type='Conv2d')), r"conv_cfg type 'Conv2d' does not match dim=3"),
    (dict(chunk_size=0), 'chunk_size must be None or a positive int'),
    (dict(conv_cfg='Conv2d'), 'conv_cfg must be None or a dict'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonLocalBlock(16, **kwargs)


def test_bad_input():
    block = NonLocalBlock(16)
    with pytest.raises(ValueError, match=r'expected a 4-D \(B, C, H, W\) input, got shape \(2, 16, 5\)'):
        block(torch.randn(2, 16, 5))
    with pytest.raises(ValueError, match=r'expected 16 input channels \(in_channels=16\), got shape \(2, 8, 4, 4\)'):
        block(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r'expected a 5-D \(B, C, D, H, W\) input'):
        NonLocalBlock(16, dim=3)(torch.randn(2, 16, 4, 4))
