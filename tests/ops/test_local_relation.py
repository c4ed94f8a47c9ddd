"""local_relation / local_aggregation: compiled kernels against the unfold references, gradcheck through the
compiled path, the contract's edge cases (taps outside the image leave the softmax), and bad input."""
import pytest
import torch

from mmlocalrel.ops import dispatch
from mmlocalrel.ops.local_relation import (COMPOSABILITIES, LocalAggregationFunction, LocalRelationFunction,
                                           local_aggregation, local_aggregation_reference, local_relation,
                                           local_relation_reference, local_relation_weights_reference, output_size)

# (kernel_size, stride, dilation, H, W): odd and even sizes, stride 2 and 3, dilation 2, k in {3, 5, 7}.
GEOMETRIES = [
    (3, 1, 1, 5, 7),
    (7, 1, 1, 9, 8),
    (3, 2, 1, 7, 6),
    (3, 1, 2, 6, 7),
    (7, 2, 2, 9, 11),
    (5, 3, 1, 8, 7),
]


@pytest.fixture(autouse=True, scope='module')
def _needs_kernels():
    # These tests are about the compiled kernels: a missing build must fail them, not fall back silently.
    assert dispatch.has_kernel('local_relation_forward', 'cpu'), dispatch.extension_status()
    assert dispatch.has_kernel('local_aggregation_forward', 'cpu'), dispatch.extension_status()


def make_inputs(k, s, H, W, B=2, C=6, G=3, dtype=torch.float64, device='cpu', seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    Ho, Wo = output_size(H, s), output_size(W, s)

    def rnd(*shape):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype=dtype, device=device)

    return rnd(B, G, Ho, Wo), rnd(B, G, H, W), rnd(B, C, H, W), rnd(G, k * k)


def relation_grads(fn, inputs, grad_out):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*inputs)
    grads = torch.autograd.grad(out, inputs, grad_out)
    return out.detach(), grads, out.grad_fn


@pytest.mark.parametrize('composability', COMPOSABILITIES)
@pytest.mark.parametrize('k,s,d,H,W', GEOMETRIES)
def test_relation_kernel_matches_reference(composability, k, s, d, H, W):
    inputs = make_inputs(k, s, H, W)
    grad_out = torch.randn(2, 6, output_size(H, s), output_size(W, s), dtype=torch.float64)
    args = (k, s, d, composability)
    out, grads, grad_fn = relation_grads(lambda *t: local_relation(*t, *args), inputs, grad_out)
    ref, ref_grads, _ = relation_grads(lambda *t: local_relation_reference(*t, *args), inputs, grad_out)
    assert type(grad_fn).__name__ == 'LocalRelationFunctionBackward'  # the compiled path ran
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for name, g, r in zip(('query', 'key', 'value', 'geo_prior'), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-10, msg=lambda m: f'grad {name}: {m}')


@pytest.mark.parametrize('k,s,d,H,W', GEOMETRIES)
def test_aggregation_kernel_matches_reference(k, s, d, H, W):
    gen = torch.Generator().manual_seed(1)
    Ho, Wo = output_size(H, s), output_size(W, s)
    weights = torch.randn(2, 3, k * k, Ho, Wo, generator=gen, dtype=torch.float64)
    value = torch.randn(2, 6, H, W, generator=gen, dtype=torch.float64)
    grad_out = torch.randn(2, 6, Ho, Wo, generator=gen, dtype=torch.float64)
    out, grads, grad_fn = relation_grads(lambda *t: local_aggregation(*t, k, s, d), (weights, value), grad_out)
    ref, ref_grads, _ = relation_grads(lambda *t: local_aggregation_reference(*t, k, s, d), (weights, value),
                                       grad_out)
    assert type(grad_fn).__name__ == 'LocalAggregationFunctionBackward'
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


# gradcheck in float64 through the compiled path: all three forms, k in {3, 7}, odd sizes, stride 2, dilation 2.
@pytest.mark.parametrize('composability', COMPOSABILITIES)
@pytest.mark.parametrize('k,s,d,H,W', [(3, 1, 1, 5, 7), (7, 1, 1, 7, 9), (3, 2, 1, 7, 5), (3, 1, 2, 5, 6),
                                       (7, 2, 2, 9, 7)])
def test_relation_gradcheck(composability, k, s, d, H, W):
    inputs = [t.requires_grad_() for t in make_inputs(k, s, H, W, B=1, C=4, G=2, seed=3)]
    assert torch.autograd.gradcheck(lambda *t: LocalRelationFunction.apply(*t, k, s, d, composability), inputs,
                                    eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('k,s,d,H,W', [(3, 1, 1, 5, 7), (7, 2, 2, 9, 7)])
def test_aggregation_gradcheck(k, s, d, H, W):
    gen = torch.Generator().manual_seed(4)
    weights = torch.randn(1, 2, k * k, output_size(H, s), output_size(W, s), generator=gen, dtype=torch.float64)
    value = torch.randn(1, 4, H, W, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *t: LocalAggregationFunction.apply(*t, k, s, d),
                                    (weights.requires_grad_(), value.requires_grad_()))


def test_float32_and_bfloat16():
    inputs = make_inputs(7, 1, 12, 10, dtype=torch.float32, seed=5)
    ref = local_relation_reference(*[t.double() for t in inputs], 7, 1, 1, 'squared_diff').float()
    torch.testing.assert_close(local_relation(*inputs, 7, 1, 1, 'squared_diff'), ref, rtol=1e-5, atol=1e-5)
    low = [t.bfloat16() for t in inputs]
    ref_low = local_relation_reference(*[t.double() for t in low], 7, 1, 1, 'squared_diff')
    out_low = local_relation(*low, 7, 1, 1, 'squared_diff')
    assert out_low.dtype == torch.bfloat16
    torch.testing.assert_close(out_low.double(), ref_low, rtol=2e-2, atol=2e-2)


def test_outside_taps_leave_the_softmax():
    # A 1x1 image: only the centre tap is inside, so its weight is 1 and the output is the value itself, whatever
    # the logits (zero padding instead would mix in zeros with weight > 0).
    q, k, v, geo = make_inputs(7, 1, 1, 1, seed=6)
    torch.testing.assert_close(local_relation(q, k, v, geo, 7, 1, 1, 'dot'), v, rtol=0, atol=1e-15)
    # Corner pixel of a larger image: weights over the (k//2 + 1)^2 in-image taps sum to 1 and no weight is put
    # outside; checked through aggregation of a constant value.
    q, k, v, geo = make_inputs(5, 1, 6, 6, seed=7)
    w = local_relation_weights_reference(q, k, geo, 5, 1, 1, 'squared_diff')
    torch.testing.assert_close(w.sum(dim=2), torch.ones_like(w[:, :, 0]))
    assert (w[:, :, :, 0, 0].view(2, 3, 5, 5)[:, :, :2, :] == 0).all()
    ones = torch.ones_like(v)
    torch.testing.assert_close(local_relation(q, k, ones, geo, 5, 1, 1, 'squared_diff'), torch.ones(2, 6, 6, 6, dtype=torch.float64))


def test_large_logits_are_stable():
    # Max-subtraction: logits in the thousands must not overflow to inf / nan.
    inputs = make_inputs(3, 1, 6, 5, dtype=torch.float32, scale=40.0, seed=8)
    for composability in COMPOSABILITIES:
        out = local_relation(*inputs, 3, 1, 1, composability)
        assert torch.isfinite(out).all()
        ref = local_relation_reference(*[t.double() for t in inputs], 3, 1, 1, composability)
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-3)


def test_backward_is_deterministic():
    inputs = make_inputs(7, 2, 11, 9, dtype=torch.float32, seed=9)
    grad_out = torch.randn(2, 6, 6, 5)
    runs = [relation_grads(lambda *t: local_relation(*t, 7, 2, 1, 'abs_diff'), inputs, grad_out)[1] for _ in range(2)]
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_reference_mode_uses_the_reference(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'reference')
    inputs = [t.requires_grad_() for t in make_inputs(3, 1, 4, 4)]
    out = local_relation(*inputs, 3, 1, 1, 'squared_diff')
    assert 'LocalRelationFunction' not in type(out.grad_fn).__name__


@pytest.mark.parametrize('change,match', [
    (dict(composability='cosine'), 'composability must be one of'),
    (dict(kernel_size=4), 'kernel_size must be an odd int'),
    (dict(stride=0), 'stride must be an int >= 1'),
    (dict(dilation=1.5), 'dilation must be an int >= 1'),
    (dict(value=torch.zeros(2, 7, 6, 6)), 'value channels C=7 must be divisible by the groups G=3'),
    (dict(geo_prior=torch.zeros(3, 9)), r'geo_prior must have shape \(G, k\*k\) = \(3, 25\)'),
    (dict(query=torch.zeros(2, 3, 6, 6)), r'query must have shape .*stride=2.* = \(2, 3, 3, 3\)'),
    (dict(key=torch.zeros(2, 3, 5, 6)), r'key must have shape \(B, G, H, W\) = \(2, 3, 6, 6\)'),
    (dict(key=torch.zeros(3, 6, 6)), r'key must be 4-D'),
    (dict(geo_prior=torch.zeros(3, 25, dtype=torch.float64)), 'geo_prior must have the dtype of value'),
])
def test_bad_input_names_the_argument(change, match):
    args = dict(query=torch.zeros(2, 3, 3, 3), key=torch.zeros(2, 3, 6, 6), value=torch.zeros(2, 6, 6, 6),
                geo_prior=torch.zeros(3, 25), kernel_size=5, stride=2, dilation=1, composability='squared_diff')
    args.update(change)
    with pytest.raises(ValueError, match=match):
        local_relation(**args)


def test_bad_aggregation_input():
    with pytest.raises(ValueError, match=r'weights must have shape'):
        local_aggregation(torch.zeros(1, 2, 9, 4, 4), torch.zeros(1, 4, 4, 4), kernel_size=5)
    with pytest.raises(ValueError, match='value channels C=5 must be divisible'):
        local_aggregation(torch.zeros(1, 2, 9, 4, 4), torch.zeros(1, 5, 4, 4), kernel_size=3)


def test_kernel_checks_shapes_itself():
    # The C++ entry points validate too (they are callable directly through torch.ops).
    op = dispatch.kernel('local_relation_forward')
    with pytest.raises(RuntimeError, match='query must have shape'):
        op(torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, 4), torch.zeros(2, 9), 3, 1, 1,
           'squared_diff')
    with pytest.raises(RuntimeError, match='composability must be one of'):
        op(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, 4), torch.zeros(2, 9), 3, 1, 1,
           'cos')


@pytest.mark.cuda
@pytest.mark.parametrize('composability', COMPOSABILITIES)
@pytest.mark.parametrize('k,s,d,H,W', GEOMETRIES)
def test_cuda_matches_cpu_and_reference(composability, k, s, d, H, W):
    inputs = make_inputs(k, s, H, W)
    grad_out = torch.randn(2, 6, output_size(H, s), output_size(W, s), dtype=torch.float64)
    args = (k, s, d, composability)
    cpu_out, cpu_grads, _ = relation_grads(lambda *t: local_relation(*t, *args), inputs, grad_out)
    out, grads, grad_fn = relation_grads(lambda *t: local_relation(*t, *args), [t.cuda() for t in inputs],
                                         grad_out.cuda())
    assert type(grad_fn).__name__ == 'LocalRelationFunctionBackward'
    torch.testing.assert_close(out.cpu(), cpu_out, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, cpu_grads):
        torch.testing.assert_close(g.cpu(), r, rtol=1e-9, atol=1e-10)
    cuda_inputs = [t.cuda().requires_grad_() for t in make_inputs(k, s, H, W, B=1, C=4, G=2)]
    assert torch.autograd.gradcheck(lambda *t: LocalRelationFunction.apply(*t, *args), cuda_inputs, eps=1e-6,
                                    atol=1e-6)
    w = torch.randn(2, 3, k * k, output_size(H, s), output_size(W, s), dtype=torch.float64)
    v = inputs[2]
    a_cpu, ga_cpu, _ = relation_grads(lambda *t: local_aggregation(*t, k, s, d), (w, v), grad_out)
    a, ga, _ = relation_grads(lambda *t: local_aggregation(*t, k, s, d), (w.cuda(), v.cuda()), grad_out.cuda())
    torch.testing.assert_close(a.cpu(), a_cpu, rtol=1e-10, atol=1e-10)
    for g, r in zip(ga, ga_cpu):
        torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_cuda_half_precision():
    inputs = make_inputs(7, 1, 16, 13, dtype=torch.float16, device='cuda', seed=10)
    ref = local_relation_reference(*[t.double() for t in inputs], 7, 1, 1, 'squared_diff')
    out = local_relation(*inputs, 7, 1, 1, 'squared_diff')
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-2)
