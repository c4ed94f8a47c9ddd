import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

import mmlocalrel  # noqa: F401  (registers the modules)
from mmlocalrel.models.layers.lip import LIP2d, LIPBottleneckLogit, LIPProjectionLogit, LIPSimplifiedLogit
from mmlocalrel.ops import lip2d_reference

LOGITS = ['LIPProjectionLogit', 'LIPBottleneckLogit', 'LIPSimplifiedLogit']


def randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return module


@pytest.mark.parametrize('logit', LOGITS)
def test_registered_and_starts_as_average_pooling(logit):
    layer = MODELS.build(dict(type='LIP2d', in_channels=6, logit_cfg=dict(type=logit)))
    assert isinstance(layer, LIP2d) and type(layer.logit).__name__ == logit
    x = torch.randn(2, 6, 9, 8)
    out = layer(x)
    # zero-initialised conv before the last IN: constant logits, i.e. average pooling over the taps in the image
    torch.testing.assert_close(out, F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('logit', LOGITS)
def test_forward_is_lip_of_the_logit_module(logit):
    layer = randomise(LIP2d(6, logit_cfg=dict(type=logit, zero_init=False)))
    x = torch.randn(2, 6, 9, 8)
    logits = layer.logit(x)
    assert logits.shape == x.shape and logits.min() > 0 and logits.max() < 12
    assert logits.std() > 0.5  # not constant: the test below could not pass with the logits ignored
    out = layer(x)
    torch.testing.assert_close(out, lip2d_reference(x, logits), rtol=1e-5, atol=1e-5)
    assert (out - F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)).abs().max() > 1e-2


def test_projection_structure():
    m = LIPProjectionLogit(8, coeff=5.0)
    assert m.conv.kernel_size == (1, 1) and m.conv.bias is None and m.conv.out_channels == 8
    assert isinstance(m.norm, nn.InstanceNorm2d) and m.norm.affine
    assert m.gate.coeff == 5.0
    assert torch.all(m.conv.weight == 0)
    randomise(m)
    assert m(torch.randn(1, 8, 5, 5)).max() < 5.0
    assert sum(p.numel() for p in m.parameters()) == 8 * 8 + 2 * 8


def test_bottleneck_structure():
    m = LIPBottleneckLogit(16, out_channels=8, mid_channels=4)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(16, 4, (1, 1)), (4, 4, (3, 3)),
                                                                                (4, 8, (1, 1))]
    assert all(c.bias is None for c in convs)
    norms = [n for n in m.modules() if isinstance(n, nn.InstanceNorm2d)]
    assert len(norms) == 3 and all(n.affine for n in norms)
    assert sum(isinstance(a, nn.ReLU) for a in m.modules()) == 2
    assert m(torch.randn(1, 16, 5, 5)).shape == (1, 8, 5, 5)
    assert sum(p.numel() for p in m.parameters()) == 16 * 4 + 4 * 4 * 9 + 4 * 8 + 2 * (4 + 4 + 8)


def test_simplified_structure():
    m = LIPSimplifiedLogit(8, coeff=12)
    assert m.conv.kernel_size == (3, 3) and m.conv.padding == (1, 1) and m.conv.bias is None
    assert isinstance(m.norm, nn.InstanceNorm2d) and m.norm.affine
    assert sum(p.numel() for p in m.parameters()) == 8 * 8 * 9 + 2 * 8


def test_coeff_bounds_the_logits():
    x = torch.randn(1, 4, 8, 8)
    for coeff in (1.0, 12.0, 30.0):
        m = randomise(LIPProjectionLogit(4, coeff=coeff, zero_init=False))
        logits = m(x)
        assert logits.max() <= coeff and logits.max() > coeff / 2


def test_guide_computes_the_logits():
    # LIP-ResNet pools a block's inner features with logits computed from the block input.
    layer = randomise(LIP2d(8, logit_cfg=dict(type='LIPProjectionLogit', in_channels=4, zero_init=False)))
    x, guide = torch.randn(2, 8, 7, 7), torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(layer(x, guide=guide), lip2d_reference(x, layer.logit(guide)))


def test_geometry_arguments():
    layer = LIP2d(3, kernel_size=2, stride=1, padding=0)
    x = torch.randn(1, 3, 5, 6)
    assert layer(x).shape == F.avg_pool2d(x, 2, 1, 0).shape


def test_gradients_reach_the_logit_module():
    layer = LIP2d(4, logit_cfg=dict(type='LIPBottleneckLogit', mid_channels=8))
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    (layer(x) * torch.randn(2, 4, 5, 5)).sum().backward()
    assert x.grad.abs().sum() > 0
    # the zero-initialised expand conv still learns (through the IN of a constant map)
    assert layer.logit.head.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def test_init_weights_keeps_the_zero_init():
    # A backbone's init_cfg (Kaiming on every Conv2d) runs first, then children's init_weights.
    class Parent(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Kaiming', layer='Conv2d'))
            self.lip = LIP2d(4, logit_cfg=dict(type='LIPBottleneckLogit', mid_channels=8))

    parent = Parent()
    parent.init_weights()
    assert torch.all(parent.lip.logit.head.conv.weight == 0)
    assert parent.lip.logit.trunk[0].conv.weight.abs().sum() > 0


def test_bf16_autocast_is_finite():
    layer = LIP2d(4, logit_cfg=dict(type='LIPBottleneckLogit', mid_channels=8, coeff=20.0, zero_init=False))
    randomise(layer)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@MODELS.register_module(force=True)
class _TestLIPCroppingLogit(nn.Module):

    def __init__(self, in_channels, out_channels):
        super().__init__()

    def forward(self, x):
        return x[..., :-1]


@pytest.mark.parametrize('kwargs,match', [
    (dict(logit_cfg=dict(type='NoSuchLogit')), 'logit_cfg type .NoSuchLogit. is not a registered module'),
    (dict(logit_cfg='LIPProjectionLogit'), 'logit_cfg must be a dict with a type'),
    (dict(logit_cfg=dict(type='LIPProjectionLogit', out_channels=3)), 'out_channels must equal in_channels'),
    (dict(padding=2), 'padding must be <= kernel_size / 2'),
    (dict(stride=0), 'stride must be an int >= 1'),
    (dict(in_channels=0), 'in_channels must be a positive int'),
    (dict(logit_cfg=dict(type='LIPProjectionLogit', coeff=0)), 'coeff must be a number > 0'),
    (dict(logit_cfg=dict(type='LIPBottleneckLogit', mid_channels=0)), 'mid_channels must be a positive int'),
])
def test_bad_arguments(kwargs, match):
    args = dict(in_channels=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LIP2d(**args)


def test_bad_input():
    layer = LIP2d(4)
    with pytest.raises(ValueError, match='expected 4 input channels'):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match='expected a 4-D'):
        layer(torch.randn(4, 8, 8))
    with pytest.raises(ValueError, match='empty output'):
        LIP2d(4, kernel_size=5, padding=1)(torch.randn(1, 4, 2, 8))
    with pytest.raises(ValueError, match='the logit module returned shape'):
        LIP2d(4, logit_cfg=dict(type='_TestLIPCroppingLogit'))(torch.randn(1, 4, 8, 8))
