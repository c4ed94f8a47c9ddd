import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.models.layers import SELayer
from mmengine.registry import MODELS

import mmlocalrel  # noqa: F401  (registers the blocks)
from mmlocalrel.models.layers import SEBlock


def test_matches_mmdet_selayer():
    ref = SELayer(64, ratio=16).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.3)
    ours = SEBlock(64, ratio=1 / 16).eval()
    ours.load_state_dict(ref.state_dict())  # strict: same keys
    x = torch.randn(2, 64, 5, 7)
    expected = ref(x)
    assert not torch.allclose(expected, x * 0.5, atol=1e-3)  # the weights matter
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


def test_formula_and_ranks():
    block = SEBlock(32, ratio=1 / 4).eval()
    assert block.planes == 8
    w1, b1 = block.conv1.conv.weight.flatten(1), block.conv1.conv.bias
    w2, b2 = block.conv2.conv.weight.flatten(1), block.conv2.conv.bias
    for shape in ((2, 32, 9), (2, 32, 4, 5), (2, 32, 3, 4, 5)):
        x = torch.randn(shape)
        squeeze = x.flatten(2).mean(2)
        excite = torch.sigmoid(torch.relu(squeeze @ w1.T + b1) @ w2.T + b2)
        expected = x * excite.view(excite.shape + (1, ) * (x.dim() - 2))
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-6)


def test_plugin_of_mmdet_resnet():
    # The key mmdet's ResNet passes (in_channels), in every bottleneck, on the residual branch before the sum.
    backbone = ResNet(depth=50, plugins=[dict(cfg=dict(type='SEBlock', ratio=1 / 16), position='after_conv3')])
    se = [(n, m) for n, m in backbone.named_modules() if isinstance(m, SEBlock)]
    assert len(se) == 16
    assert {m.in_channels for _, m in se} == {256, 512, 1024, 2048}
    assert all(m.planes == m.in_channels // 16 for _, m in se)
    assert backbone.layer1[0].after_conv3_plugin_names == ['se_block']
    backbone.eval()  # (mmdet's ResNet.train returns None)
    outs = backbone(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]


def test_registered():
    block = MODELS.build(dict(type='SEBlock', in_channels=64))
    assert isinstance(block, SEBlock) and block.planes == 4


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratio=1 / 128), r'ratio=0.0078125 gives int\(64 \* 0.0078125\) = 0 hidden channels; '
                          r'ratio must be >= 1/64'),
    (dict(ratio=0), 'ratio must be a number > 0'),
    (dict(act_cfg=(dict(type='ReLU'), )), 'act_cfg must be a dict or a pair of dicts'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SEBlock(64, **kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match=r'expected 64 input channels \(in_channels=64\), got shape \(2, 32, 4, 4\)'):
        SEBlock(64)(torch.randn(2, 32, 4, 4))
    with pytest.raises(ValueError, match=r'got shape \(2, 64\)'):
        SEBlock(64)(torch.randn(2, 64))
