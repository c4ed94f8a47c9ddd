import pytest
import torch
import torch.nn.functional as F

from mmlocalrel.ops import dispatch, lip2d, lip2d_reference
from mmlocalrel.ops.lip2d import Lip2dFunction

# (shape, kernel_size, stride, padding): odd and even sizes, kernel 2/3, stride 1/2, padding 0/1, non-square.
GEOMETRIES = [
    ((2, 3, 7, 9), 3, 2, 1),
    ((1, 2, 8, 6), 3, 2, 1),
    ((1, 2, 7, 5), 3, 2, 0),
    ((2, 2, 6, 7), 3, 1, 1),
    ((1, 3, 5, 5), 3, 1, 0),
    ((1, 2, 7, 8), 2, 2, 0),
    ((1, 2, 5, 7), 2, 2, 1),
    ((1, 2, 5, 4), 2, 1, 0),
    ((1, 2, 9, 6), (3, 2), (2, 1), (1, 0)),
    ((1, 1, 3, 3), 3, 2, 1),
]
IDS = [f'{s[2]}x{s[3]}-k{k}-s{st}-p{p}' for s, k, st, p in GEOMETRIES]


def composite(x, logit, kernel_size, stride, padding):
    """The paper's formula, avg_pool(x e^l) / avg_pool(e^l) (overflows for large logits; float64 here)."""
    w = logit.exp()
    return F.avg_pool2d(x * w, kernel_size, stride, padding) / F.avg_pool2d(w, kernel_size, stride, padding)


def inputs(shape, dtype=torch.float64, scale=3.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    logit = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(dtype)
    return x, logit


def test_cpu_kernel_is_built():
    # Everything below would silently test the reference against itself without the compiled kernel.
    assert dispatch.has_kernel('lip2d_forward', 'cpu') and dispatch.has_kernel('lip2d_backward', 'cpu')
    assert dispatch.use_kernel('lip2d_forward', torch.zeros(1))


@pytest.mark.parametrize('shape,k,s,p', GEOMETRIES, ids=IDS)
def test_reference_is_the_paper_formula(shape, k, s, p):
    x, logit = inputs(shape)
    ref = lip2d_reference(x, logit, k, s, p)
    assert ref.shape == F.avg_pool2d(x, k, s, p).shape
    torch.testing.assert_close(ref, composite(x, logit, k, s, p), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('shape,k,s,p', GEOMETRIES, ids=IDS)
def test_kernel_forward_matches_reference(shape, k, s, p):
    x, logit = inputs(shape)
    out = lip2d(x, logit, k, s, p)
    assert out.shape == F.avg_pool2d(x, k, s, p).shape
    torch.testing.assert_close(out, lip2d_reference(x, logit, k, s, p), rtol=1e-12, atol=1e-12)
    # float32 through the vectorised loops (polynomial exp)
    out32 = lip2d(x.float(), logit.float(), k, s, p)
    torch.testing.assert_close(out32.double(), lip2d_reference(x, logit, k, s, p), rtol=1e-5, atol=1e-5)


def test_kernel_returns_window_logsumexp():
    x, logit = inputs((2, 3, 7, 9))
    k, s, p = 3, 2, 1
    out, lse = dispatch.kernel('lip2d_forward')(x, logit, [k, k], [s, s], [p, p])
    # taps outside the image excluded: pad with -inf, then a max-pool-free logsumexp over the unfolded window
    padded = F.pad(logit, (p, p, p, p), value=float('-inf'))
    windows = padded.unfold(2, k, s).unfold(3, k, s)  # (B, C, OH, OW, k, k)
    torch.testing.assert_close(lse, windows.flatten(-2).logsumexp(-1))
    torch.testing.assert_close(out, lip2d_reference(x, logit, k, s, p))


@pytest.mark.parametrize('shape,k,s,p', GEOMETRIES, ids=IDS)
def test_kernel_backward_matches_reference(shape, k, s, p):
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        x, logit = inputs(shape, dtype)
        x.requires_grad_(), logit.requires_grad_()
        x_ref, logit_ref = x.detach().double().requires_grad_(), logit.detach().double().requires_grad_()
        out = lip2d(x, logit, k, s, p)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        got = torch.autograd.grad(out, (x, logit), grad.to(dtype))
        want = torch.autograd.grad(lip2d_reference(x_ref, logit_ref, k, s, p), (x_ref, logit_ref), grad)
        for g, w in zip(got, want):
            torch.testing.assert_close(g.double(), w, rtol=tol, atol=tol)


@pytest.mark.parametrize('shape,k,s,p', GEOMETRIES, ids=IDS)
def test_gradcheck_through_kernel(shape, k, s, p):
    x, logit = inputs(shape)
    x.requires_grad_(), logit.requires_grad_()
    assert dispatch.use_kernel('lip2d_forward', x)
    assert torch.autograd.gradcheck(lambda a, b: Lip2dFunction.apply(a, b, *_pairs(k, s, p)), (x, logit))
    assert torch.autograd.gradcheck(lambda a, b: lip2d(a, b, k, s, p), (x, logit))


def _pairs(*args):
    return [tuple(a) if isinstance(a, tuple) else (a, a) for a in args]


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_large_logits_stay_finite(dtype):
    # Logits up to 20: exp overflows fp16 (max 65504) from 11.1 on, so the paper's composite formula gives inf/NaN;
    # the kernel subtracts the window maximum and accumulates in fp32.
    x, logit = inputs((2, 4, 9, 11), torch.float64, seed=3)
    logit = logit.abs() * 4 + 8  # in [8, ~20]
    assert logit.max() > 15
    xh, lh = x.to(dtype).requires_grad_(), logit.to(dtype).requires_grad_()
    if dtype == torch.float16:
        assert not torch.isfinite(composite(xh.detach(), lh.detach(), 3, 2, 1)).all()
    out = lip2d(xh, lh, 3, 2, 1)
    assert out.dtype == dtype and torch.isfinite(out).all()
    want = lip2d_reference(xh.detach().double(), lh.detach().double(), 3, 2, 1)
    tol = 1e-2 if dtype == torch.float16 else 4e-2
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol)
    gx, gl = torch.autograd.grad(out.float().sum(), (xh, lh))
    assert torch.isfinite(gx).all() and torch.isfinite(gl).all()
    xr, lr = xh.detach().double().requires_grad_(), lh.detach().double().requires_grad_()
    rx, rl = torch.autograd.grad(lip2d_reference(xr, lr, 3, 2, 1).sum(), (xr, lr))
    torch.testing.assert_close(gx.double(), rx, rtol=tol, atol=tol)
    torch.testing.assert_close(gl.double(), rl, rtol=tol, atol=tol * 4)


def test_bf16_autocast_mixed_dtypes():
    # Under autocast the features come out of a conv in bf16 while the logits may be fp32: both are promoted.
    x, logit = inputs((2, 4, 9, 9), torch.float32, seed=4)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        feats = conv(x)
        assert feats.dtype == torch.bfloat16
        out = lip2d(feats, logit.abs() * 20, 3, 2, 1)  # fp32 logits up to ~60
        out_bf = lip2d(feats, (logit.abs() * 20).bfloat16(), 3, 2, 1)
    assert out.dtype == torch.float32 and out_bf.dtype == torch.bfloat16
    assert torch.isfinite(out).all() and torch.isfinite(out_bf).all()
    out_bf.float().sum().backward()
    assert torch.isfinite(conv.weight.grad).all()


def test_very_negative_logits_do_not_underflow():
    # exp(-200) underflows fp32 to 0 in every tap, so the composite formula gives 0/0; the window maximum does not.
    x, logit = inputs((1, 2, 6, 6), torch.float32)
    logit = logit - 200
    assert torch.isnan(composite(x, logit, 3, 2, 1)).any()
    out = lip2d(x, logit, 3, 2, 1)
    torch.testing.assert_close(out.double(), lip2d_reference(x.double(), logit.double()), rtol=1e-5, atol=1e-5)


def test_limits_max_and_average_pooling():
    x, _ = inputs((1, 2, 7, 7))
    # equal logits: average pooling over the taps inside the image (count_include_pad=False)
    avg = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(lip2d(x, torch.full_like(x, 5.0)), avg)
    # logits = 1000 x: max pooling in the limit; no overflow thanks to the window maximum
    torch.testing.assert_close(lip2d(x, 1000 * x), F.max_pool2d(x, 3, 2, 1), rtol=1e-2, atol=1e-2)


def test_non_contiguous_inputs():
    x, logit = inputs((2, 3, 8, 9))
    want = lip2d(x, logit)
    torch.testing.assert_close(lip2d(x.to(memory_format=torch.channels_last), logit.transpose(2, 3).contiguous()
                                     .transpose(2, 3)), want)


def test_backward_is_deterministic():
    x, logit = inputs((2, 8, 15, 17), torch.float32)
    x.requires_grad_(), logit.requires_grad_()
    grads = [torch.autograd.grad(lip2d(x, logit).square().sum(), (x, logit)) for _ in range(3)]
    for g in grads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(g, grads[0]))


def test_reference_fallback_when_forced(monkeypatch):
    x, logit = inputs((1, 2, 7, 7))
    monkeypatch.setenv('MMLOCALREL_OPS', 'reference')
    assert not dispatch.use_kernel('lip2d_forward', x)
    torch.testing.assert_close(lip2d(x, logit), lip2d_reference(x, logit))


@pytest.mark.parametrize('kwargs,match', [
    (dict(logit_shape=(1, 2, 6, 7)), 'logit must have the shape of x'),
    (dict(shape=(2, 6, 7)), 'x must be a 4-D tensor'),
    (dict(kernel_size=3, padding=2), 'padding must be <= kernel_size / 2'),
    (dict(kernel_size=5, padding=1, shape=(1, 2, 2, 9)), 'empty output'),
    (dict(stride=0), 'stride must be an int >= 1'),
    (dict(kernel_size=(3, 3, 3)), 'kernel_size must be an int >= 1 or a pair'),
    (dict(padding=-1), 'padding must be an int >= 0'),
])
def test_bad_input(kwargs, match):
    shape = kwargs.pop('shape', (1, 2, 6, 6))
    x = torch.zeros(shape)
    logit = torch.zeros(kwargs.pop('logit_shape', shape))
    for fn in (lip2d, lip2d_reference):
        with pytest.raises(ValueError, match=match):
            fn(x, logit, **kwargs)


def test_kernel_checks_its_arguments():
    # Direct torch.ops calls bypass the Python checks: the kernel refuses too.
    x = torch.zeros(1, 2, 6, 6)
    with pytest.raises(RuntimeError, match='logit must have'):
        dispatch.kernel('lip2d_forward')(x, torch.zeros(1, 2, 6, 5), [3, 3], [2, 2], [1, 1])
    with pytest.raises(RuntimeError, match='padding must be'):
        dispatch.kernel('lip2d_forward')(x, x, [3, 3], [2, 2], [2, 2])


@pytest.mark.cuda
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu(dtype):
    assert dispatch.has_kernel('lip2d_forward', 'cuda')
    for shape, k, s, p in GEOMETRIES:
        x, logit = inputs(shape, dtype)
        x.requires_grad_(), logit.requires_grad_()
        xc, lc = x.detach().cuda().requires_grad_(), logit.detach().cuda().requires_grad_()
        out, out_c = lip2d(x, logit, k, s, p), lip2d(xc, lc, k, s, p)
        tol = 1e-10 if dtype == torch.float64 else 1e-5 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(out_c.cpu(), out, rtol=tol, atol=tol)
        grad = torch.randn_like(out)
        g = torch.autograd.grad(out, (x, logit), grad)
        g_c = torch.autograd.grad(out_c, (xc, lc), grad.cuda())
        for a, b in zip(g_c, g):
            torch.testing.assert_close(a.cpu(), b, rtol=tol, atol=tol)
        if dtype == torch.float64:
            assert torch.autograd.gradcheck(lambda a, b: lip2d(a, b, k, s, p), (xc, lc))
