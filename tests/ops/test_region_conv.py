"""region_conv: compiled kernels vs the all-regions reference, the reference vs an independent per-region formula,
gradcheck through the compiled path, the guide's surrogate gradient, and bad input."""
import pytest
import torch
import torch.nn.functional as F

from mmlocalrel.ops import dispatch, has_kernel, region_conv, region_conv_reference
from mmlocalrel.ops.region_conv import RegionConvFunction

# (B, C_in, C_out, H, W, m, kernel, stride, padding, dilation): odd sizes, stride 2, dilation 2, non-square
# kernels and geometry, 1x1 kernels, m in {1, 3, 4}.
GEOMETRIES = [
    (2, 3, 4, 7, 9, 4, (3, 3), (1, 1), (1, 1), (1, 1)),
    (2, 5, 3, 9, 8, 3, (3, 3), (2, 2), (1, 1), (1, 1)),
    (1, 4, 2, 11, 10, 4, (3, 3), (1, 1), (2, 2), (2, 2)),
    (3, 3, 5, 6, 7, 1, (1, 1), (1, 1), (0, 0), (1, 1)),
    (2, 4, 5, 9, 7, 3, (3, 2), (2, 1), (1, 0), (1, 2)),
    (2, 2, 3, 5, 5, 4, (3, 3), (2, 2), (0, 0), (1, 1)),  # stride 2 without padding: some inputs never read
]
IDS = ['base', 'stride2', 'dil2', 'k1m1', 'mixed', 's2p0']


def out_hw(H, W, kernel, stride, padding, dilation):
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip((H, W), kernel, stride, padding, dilation))


def make(geometry, dtype=torch.float64, seed=0, regions=None):
    B, C, Co, H, W, m, kernel, stride, padding, dilation = geometry
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, H, W, generator=gen, dtype=dtype)
    kernels = torch.randn(B, m, Co, C, *kernel, generator=gen, dtype=dtype)
    Ho, Wo = out_hw(H, W, kernel, stride, padding, dilation)
    choices = torch.tensor(regions if regions is not None else list(range(m)))
    mask = choices[torch.randint(0, len(choices), (B, Ho, Wo), generator=gen)]
    guide = torch.randn(B, m, Ho, Wo, generator=gen, dtype=dtype).softmax(1)
    return x, kernels, mask, guide, (stride, padding, dilation)


def per_region_formula(x, kernels, mask, stride, padding, dilation):
    """out[b, :, p] = conv(x[b], kernels[b, mask[b, p]])[p], one plain conv per (sample, region)."""
    B, m = kernels.shape[:2]
    out = None
    for b in range(B):
        for t in range(m):
            y = F.conv2d(x[b:b + 1], kernels[b, t], None, stride, padding, dilation)[0]
            if out is None:
                out = x.new_zeros(B, *y.shape)
            out[b] += y * (mask[b] == t)
    return out


def kernel_available():
    assert has_kernel('region_conv_forward', 'cpu'), 'mmlocalrel._ext lacks region_conv: build it first'


def test_kernels_registered():
    kernel_available()
    for op in ('region_conv_backward', 'region_conv_direct_forward', 'region_conv_direct_backward'):
        assert has_kernel(op, 'cpu')


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=IDS)
def test_reference_matches_per_region_formula(geometry):
    x, kernels, mask, _, (stride, padding, dilation) = make(geometry)
    expected = per_region_formula(x, kernels, mask, stride, padding, dilation)
    torch.testing.assert_close(region_conv_reference(x, kernels, mask, stride, padding, dilation), expected)


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=IDS)
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_kernel_matches_reference_forward_backward(geometry, dtype):
    kernel_available()
    # regions 0 and 2 only where m allows: some regions own no pixel (their kernels get zero gradient)
    m = geometry[5]
    x, kernels, mask, guide, (stride, padding, dilation) = make(geometry, dtype,
                                                              regions=[0, 2] if m >= 3 else None)
    leaves = [x.requires_grad_(), kernels.requires_grad_(), guide.requires_grad_()]
    out = region_conv(x, kernels, mask, stride, padding, dilation, guide=guide)
    assert out.grad_fn is not None and 'RegionConvFunction' in type(out.grad_fn).__name__
    ref = region_conv_reference(x, kernels, mask, stride, padding, dilation, guide=guide)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out, ref, **tol)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, leaves, grad)
    want = torch.autograd.grad(ref, leaves, grad)
    for name, a, b in zip(('x', 'kernels', 'guide'), got, want):
        torch.testing.assert_close(a, b, **tol, msg=lambda s: f'grad {name}: {s}')
    if m >= 3:
        assert got[1][:, 1].abs().max() == 0 and got[1][:, 0].abs().max() > 0


@pytest.mark.parametrize('geometry', GEOMETRIES, ids=IDS)
def test_direct_path_matches_reference(geometry):
    """The element loops the CUDA kernels run (region_conv_direct_*), checked on the CPU."""
    kernel_available()
    x, kernels, mask, guide, (stride, padding, dilation) = make(geometry, regions=[0, 2] if geometry[5] >= 3 else None)
    geo = [list(stride), list(padding), list(dilation)]
    leaves = [x.requires_grad_(), kernels.requires_grad_(), guide.requires_grad_()]
    ref = region_conv_reference(x, kernels, mask, stride, padding, dilation, guide=guide)
    grad = torch.randn_like(ref)
    want = torch.autograd.grad(ref, leaves, grad)
    with torch.no_grad():
        out = dispatch.kernel('region_conv_direct_forward')(x, kernels, mask, *geo)
        got = dispatch.kernel('region_conv_direct_backward')(grad, x, kernels, mask, *geo, [True, True, True])
    torch.testing.assert_close(out, ref.detach(), rtol=1e-10, atol=1e-10)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


# Small enough for gradcheck (O(inputs x outputs) evaluations), odd sizes, m in {1, 4}.
GRADCHECK = [
    (1, 2, 2, 5, 7, 4, (3, 3), (1, 1), (1, 1), (1, 1)),
    (2, 2, 2, 7, 5, 4, (3, 3), (2, 2), (1, 1), (1, 1)),
    (1, 2, 2, 7, 7, 4, (3, 3), (1, 1), (2, 2), (2, 2)),
    (1, 2, 2, 5, 7, 4, (3, 3), (2, 2), (2, 2), (2, 2)),
    (2, 2, 3, 5, 5, 1, (3, 3), (2, 2), (1, 1), (2, 2)),
]


@pytest.mark.parametrize('geometry', GRADCHECK, ids=['m4', 'm4-stride2', 'm4-dil2', 'm4-s2d2', 'm1-s2d2'])
def test_gradcheck_compiled(geometry):
    kernel_available()
    x, kernels, mask, _, geo = make(geometry)
    x.requires_grad_()
    kernels.requires_grad_()
    fn = lambda a, k: RegionConvFunction.apply(a, k, mask, None, *map(list, geo))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, kernels), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize('stride,padding,dilation', [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_single_region_is_a_per_sample_conv(stride, padding, dilation):
    kernel_available()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 9, 8, generator=gen, dtype=torch.float64)
    weights = torch.randn(3, 5, 4, 3, 3, generator=gen, dtype=torch.float64)
    expected = torch.cat([F.conv2d(x[b:b + 1], weights[b], None, stride, padding, dilation) for b in range(3)])
    mask = torch.zeros(3, *expected.shape[-2:], dtype=torch.long)
    out = region_conv(x, weights[:, None], mask, stride, padding, dilation)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_guide_surrogate_gradient():
    """dL/dF^_t(p) = <dL/dY(p), Y_t(p)> with Y_t region t's kernel at every pixel, computed independently; and
    through a softmax, dL/dF = softmax'(F)^T dL/dF^."""
    kernel_available()
    x, kernels, mask, _, (stride, padding, dilation) = make(GEOMETRIES[1])
    B, m = kernels.shape[:2]
    logits = torch.randn(B, m, *mask.shape[1:], dtype=torch.float64, requires_grad=True)
    soft = logits.softmax(1)
    out = region_conv(x, kernels, mask, stride, padding, dilation, guide=soft)
    grad = torch.randn_like(out)
    g_logits, = torch.autograd.grad(out, logits, grad)
    with torch.no_grad():
        y = torch.stack([torch.stack([F.conv2d(x[b:b + 1], kernels[b, t], None, stride, padding, dilation)[0]
                                      for t in range(m)]) for b in range(B)])  # (B, m, Co, Ho, Wo)
        g_soft = (y * grad.unsqueeze(1)).sum(2)  # (B, m, Ho, Wo)
        s = soft.detach()
        expected = s * (g_soft - (s * g_soft).sum(1, keepdim=True))  # softmax Jacobian (symmetric) times g_soft
    torch.testing.assert_close(g_logits, expected, rtol=1e-10, atol=1e-10)
    # the guide never changes the forward value
    torch.testing.assert_close(out.detach(), region_conv(x, kernels, mask, stride, padding, dilation))


def test_guide_gradient_in_float32_is_cast_back():
    kernel_available()
    x, kernels, mask, guide, geo = make(GEOMETRIES[0], dtype=torch.float32)
    guide = guide.double().requires_grad_()
    region_conv(x, kernels, mask, *geo, guide=guide).sum().backward()
    assert guide.grad.dtype == torch.float64 and guide.grad.abs().sum() > 0


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('batch', [1, 3])
def test_threading_paths_agree_and_are_deterministic(threads, batch):
    """Samples in parallel (B >= threads, enough work per sample) or threads inside each sample: same numbers,
    run after run."""
    kernel_available()
    geometry = (batch, 16, 16, 17, 15, 4, (3, 3), (1, 1), (1, 1), (1, 1))  # L*K*C_out above the per-sample grain
    x, kernels, mask, guide, geo = make(geometry, dtype=torch.float32, seed=3)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = []
        for _ in range(2):
            leaves = [t.clone().requires_grad_() for t in (x, kernels, guide)]
            out = region_conv(leaves[0], leaves[1], mask, *geo, guide=leaves[2])
            out.backward(torch.ones_like(out))
            results.append([out.detach()] + [t.grad for t in leaves])
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(*results):
        assert torch.equal(a, b)
    ref = region_conv_reference(x, kernels, mask, *geo)
    torch.testing.assert_close(results[0][0], ref, rtol=1e-4, atol=1e-4)


def test_non_contiguous_inputs():
    kernel_available()
    x, kernels, mask, _, geo = make(GEOMETRIES[0])
    x_cl = x.to(memory_format=torch.channels_last)
    k_nc = kernels.transpose(4, 5).contiguous().transpose(4, 5)
    mask_nc = mask.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(region_conv(x_cl, k_nc, mask_nc, *geo), region_conv_reference(x, kernels, mask, *geo))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_low_precision_forward_backward(dtype):
    kernel_available()
    x, kernels, mask, guide, geo = make(GEOMETRIES[0], dtype=torch.float32)
    ref = region_conv_reference(x, kernels, mask, *geo)
    xl, kl = x.to(dtype).requires_grad_(), kernels.to(dtype).requires_grad_()
    out = region_conv(xl, kl, mask, *geo)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, rtol=5e-2, atol=5e-2 * ref.abs().max().item())
    out.float().sum().backward()
    assert xl.grad.dtype == dtype and torch.isfinite(xl.grad.float()).all()


def test_empty_batch():
    kernel_available()
    x = torch.randn(0, 3, 5, 5, requires_grad=True)
    kernels = torch.randn(0, 2, 4, 3, 3, 3, requires_grad=True)
    guide = torch.randn(0, 2, 5, 5, requires_grad=True)
    out = region_conv(x, kernels, torch.zeros(0, 5, 5, dtype=torch.long), 1, 1, 1, guide=guide)
    assert out.shape == (0, 4, 5, 5)
    out.sum().backward()
    assert x.grad.shape == x.shape and kernels.grad.shape == kernels.shape and guide.grad.shape == guide.shape


def test_reference_mode_uses_reference(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'reference')
    x, kernels, mask, _, geo = make(GEOMETRIES[0])
    out = region_conv(x, kernels.requires_grad_(), mask, *geo)
    assert 'RegionConvFunction' not in type(out.grad_fn).__name__


# ---- bad input: errors name the argument ----

def test_bad_input_errors():
    x, kernels, mask, guide, geo = make(GEOMETRIES[0])
    with pytest.raises(ValueError, match='x must be a 4-D'):
        region_conv(x[0], kernels, mask, *geo)
    with pytest.raises(ValueError, match=r'kernels must be \(B=2, m, C_out, C_in=3'):
        region_conv(x, kernels[:, :, :, :2], mask, *geo)
    with pytest.raises(ValueError, match='kernels must be'):
        region_conv(x, kernels[0], mask, *geo)
    with pytest.raises(ValueError, match='kernels dtype'):
        region_conv(x, kernels.float(), mask, *geo)
    with pytest.raises(ValueError, match=r'mask values must lie in \[0, m\) = \[0, 4\)'):
        region_conv(x, kernels, torch.full_like(mask, 4), *geo)
    with pytest.raises(ValueError, match='mask values'):
        region_conv(x, kernels, mask - 1, *geo)
    with pytest.raises(ValueError, match=r'mask must be \(B, H_out, W_out\)'):
        region_conv(x, kernels, mask[:, 1:], *geo)
    with pytest.raises(ValueError, match='mask must be an integer'):
        region_conv(x, kernels, mask.double(), *geo)
    with pytest.raises(ValueError, match='guide must be'):
        region_conv(x, kernels, mask, *geo, guide=guide[:, :2])
    with pytest.raises(ValueError, match='stride must be'):
        region_conv(x, kernels, mask, 0, 1, 1)
    with pytest.raises(ValueError, match='too small'):
        region_conv(x[..., :1, :1], kernels, mask, 1, 0, 1)


def test_compiled_op_checks_its_own_arguments():
    """torch.ops.mmlocalrel.* are callable directly: they must not read out of bounds on bad masks."""
    kernel_available()
    x, kernels, mask, _, geo = make(GEOMETRIES[0])
    geo = [list(g) for g in geo]
    for op in ('region_conv_forward', 'region_conv_direct_forward'):
        with pytest.raises(RuntimeError, match=r'mask values must lie in \[0, m\)'):
            dispatch.kernel(op)(x, kernels, torch.full_like(mask, 7), *geo)
        with pytest.raises(RuntimeError, match='mask must be int64'):
            dispatch.kernel(op)(x, kernels, mask.int(), *geo)
        with pytest.raises(RuntimeError, match=r'kernels must be \(B=2'):
            dispatch.kernel(op)(x, kernels[:, :, :, :2].contiguous(), mask, *geo)
    with pytest.raises(RuntimeError, match='grad_out must be'):
        dispatch.kernel('region_conv_backward')(x, x, kernels, mask, *geo, [True, True, True])


@pytest.mark.cuda
@pytest.mark.parametrize('geometry', GEOMETRIES, ids=IDS)
def test_cuda_matches_reference(geometry):
    assert has_kernel('region_conv_forward', 'cuda')
    x, kernels, mask, guide, (stride, padding, dilation) = make(geometry)
    leaves = [t.cuda().requires_grad_() for t in (x, kernels, guide)]
    mask = mask.cuda()
    out = region_conv(leaves[0], leaves[1], mask, stride, padding, dilation, guide=leaves[2])
    ref = region_conv_reference(leaves[0], leaves[1], mask, stride, padding, dilation, guide=leaves[2])
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, leaves, grad), torch.autograd.grad(ref, leaves, grad)):
        torch.testing.assert_close(a, b)


@pytest.mark.cuda
def test_cuda_gradcheck():
    x, kernels, mask, _, geo = make((1, 2, 2, 5, 7, 4, (3, 3), (2, 2), (2, 2), (2, 2)))
    x, kernels, mask = x.cuda().requires_grad_(), kernels.cuda().requires_grad_(), mask.cuda()
    fn = lambda a, k: RegionConvFunction.apply(a, k, mask, None, *map(list, geo))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, kernels), eps=1e-6, atol=1e-7, rtol=1e-6)
