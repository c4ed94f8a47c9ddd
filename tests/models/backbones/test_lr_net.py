"""LRNet: the paper's architecture (parameter count), mmdet ResNet's interface, and argument checks."""
import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

import mmlocalrel  # noqa: F401  (registers)
from mmlocalrel.models.backbones import LRNet
from mmlocalrel.models.layers import LocalRelation2d


def count_with_head(model, num_classes=1000):
    # The paper's counts include the classification head: global pooling + fc(2048 -> 1000).
    return sum(p.numel() for p in model.parameters()) + model.feat_dim * num_classes + num_classes


def test_lr_net_26_parameter_count_matches_the_paper():
    model = LRNet(depth=26)
    n = count_with_head(model)
    assert abs(n / 14.7e6 - 1) < 0.03, f'LR-Net-26 has {n / 1e6:.2f}M parameters, the paper 14.7M'


def test_architecture_is_the_papers():
    model = LRNet(depth=26)
    stem = model.conv1
    assert stem.conv.kernel_size == (1, 1) and stem.conv.out_channels == 64
    assert isinstance(stem.relation, LocalRelation2d)
    assert stem.relation.kernel_size == 7 and stem.relation.stride == 2
    assert [len(getattr(model, f'layer{i}')) for i in range(1, 5)] == [2, 2, 2, 2]
    for i, width in enumerate((104, 200, 400, 800)):  # the paper's 100/200/400/800, 100 rounded to 8 | width
        for j, block in enumerate(getattr(model, f'layer{i + 1}')):
            relation = block.conv2
            assert isinstance(relation, LocalRelation2d)
            assert (relation.in_channels, relation.kernel_size, relation.channels_per_group) == (width, 7, 8)
            assert relation.stride == (2 if i > 0 and j == 0 else 1)
            assert block.conv3.out_channels == 256 * 2**i
    assert [len(getattr(LRNet(depth=d, base_channels=8), 'layer3')) for d in (50, 101)] == [6, 23]


def test_forward_backward_and_out_indices():
    model = LRNet(depth=26, base_channels=16, out_indices=(1, 3))
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 32, 40))
    assert [tuple(o.shape) for o in outs] == [(2, 128, 4, 5), (2, 512, 1, 2)]
    sum(o.sum() for o in outs).backward()
    assert model.conv1.relation.query_conv.weight.grad is not None


def test_frozen_stages_and_norm_eval():
    model = LRNet(depth=26, base_channels=16, frozen_stages=1, norm_eval=True)
    model.train()
    for module in (model.conv1, model.norm1, model.layer1):
        assert all(not p.requires_grad for p in module.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    model = LRNet(depth=26, base_channels=16, norm_eval=False)
    model.train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_zero_init_residual_and_init_cfg():
    model = LRNet(depth=26, base_channels=16)
    model.init_weights()
    assert all(block.norm3.weight.abs().sum() == 0 for layer in (model.layer1, model.layer4) for block in layer)
    model = LRNet(depth=26, base_channels=16, zero_init_residual=False)
    model.init_weights()
    assert model.layer1[0].norm3.weight.abs().sum() > 0


def test_built_from_a_config_with_plugins():
    model = MMDET_MODELS.build(
        dict(type='LRNet', depth=26, base_channels=16, relation_cfg=dict(type='LocalRelation2d',
                                                                          relation_kernel_size=5,
                                                                          channels_per_group=4),
             plugins=[dict(cfg=dict(type='GCBlock', ratio=1. / 4), position='after_conv2')]))
    block = model.layer2[0]
    assert block.conv2.kernel_size == 5 and block.conv2.channels_per_group == 4
    plugin = getattr(block, block.after_conv2_plugin_names[0])
    assert plugin.in_channels == block.mid_channels == 52  # 32 * 100 / 64 = 50, rounded to 4 | width
    outs = model(torch.randn(2, 3, 32, 32))
    assert len(outs) == 4


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=18), r'depth must be one of \(26, 50, 101\)'),
    (dict(depth=26, dcn=dict(type='DCN')), 'dcn must be None'),
    (dict(depth=26, deep_stem=True), 'deep_stem must be False'),
    (dict(depth=26, relation_cfg=dict(kernel_size=7)), 'relation_cfg must be a conv-type dict'),
    (dict(depth=26, width_ratio=0), 'width_ratio must be > 0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LRNet(**kwargs)
