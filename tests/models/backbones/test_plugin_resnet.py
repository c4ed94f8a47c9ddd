import os

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import Bottleneck
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmseg.models.backbones import ResNet as MMSegResNet
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS as MMSEG_MODELS

import mmlocalrel  # noqa: F401  (registers the blocks and the backbone)
from mmlocalrel.models.backbones import PluginResNet
from mmlocalrel.models.layers import NonLocalBlock, SEBlock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NL = dict(type='NonLocalBlock')
# res2..res4 only, where the tests' plugins are, and a quarter of the width: the tests stay fast.
THREE_STAGES = dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(0, 1, 2), base_channels=16)


def _plugin_names(backbone, cls):
    return [name for name, m in backbone.named_modules() if isinstance(m, cls)]


def _randomise(module, std=0.05, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return module


def _eval(backbone):
    backbone.eval()  # (mmdet's ResNet.train returns None)
    return backbone


# ---- placement ------------------------------------------------------------------------------------------------
def test_one_block_before_the_last_block_of_res4():
    backbone = PluginResNet(50, plugins=[dict(cfg=NL, position='after_block', blocks=((), (), (4, ), ()))])
    assert _plugin_names(backbone, NonLocalBlock) == ['layer3.4.nonlocal_block']
    assert backbone.layer3[4].after_block_plugin_names == ['nonlocal_block']
    assert backbone.layer3[4].nonlocal_block.in_channels == 1024
    from_end = PluginResNet(50, plugins=[dict(cfg=NL, position='after_block', blocks=((), (), (-2, ), ()))])
    assert _plugin_names(from_end, NonLocalBlock) == ['layer3.4.nonlocal_block']


def test_five_blocks_every_other_block_of_res3_res4():
    backbone = PluginResNet(50, plugins=[dict(cfg=NL, position='after_block', blocks=((), (1, 3), (1, 3, 5), ()))])
    assert _plugin_names(backbone, NonLocalBlock) == [
        'layer2.1.nonlocal_block', 'layer2.3.nonlocal_block', 'layer3.1.nonlocal_block', 'layer3.3.nonlocal_block',
        'layer3.5.nonlocal_block'
    ]


def test_blocks_inside_the_residual_branch():
    backbone = PluginResNet(50, plugins=[dict(cfg=dict(type='SEBlock'), position='after_conv2',
                                              blocks=((0, ), (), (), (2, )))])
    assert _plugin_names(backbone, SEBlock) == ['layer1.0.se_block', 'layer4.2.se_block']
    assert backbone.layer1[0].se_block.in_channels == 64 and backbone.layer4[2].se_block.in_channels == 512
    assert backbone.layer4[2].after_conv2_plugin_names == ['se_block']
    assert backbone.layer4[1].with_plugins is False


def test_after_block_runs_on_the_block_output():
    backbone = PluginResNet(50, plugins=[dict(cfg=NL, position='after_block', blocks=((), (), (4, )))],
                            **THREE_STAGES)
    block = _eval(backbone).layer3[4]
    _randomise(block.nonlocal_block)
    x = torch.randn(1, 256, 4, 5)
    expected = block.nonlocal_block(Bottleneck.forward(block, x))  # after the residual sum and its ReLU
    assert (expected - Bottleneck.forward(block, x)).abs().max() > 1e-3
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)


def test_basic_block_depths_take_after_block():
    backbone = PluginResNet(18, plugins=[dict(cfg=NL, position='after_block', blocks=((), (), (1, )))],
                            **THREE_STAGES)
    assert _plugin_names(backbone, NonLocalBlock) == ['layer3.1.nonlocal_block']
    assert backbone.layer3[1].nonlocal_block.in_channels == 64
    _eval(backbone)(torch.randn(1, 3, 32, 32))


# ---- same as mmdet's ResNet where it has the feature ----------------------------------------------------------
def test_without_blocks_is_mmdet_resnet():
    plugins = [dict(cfg=dict(type='SEBlock', ratio=1 / 4), position='after_conv2', stages=(False, True, True))]
    ref = _eval(ResNet(50, plugins=plugins, **THREE_STAGES))
    ours = _eval(PluginResNet(50, plugins=plugins, **THREE_STAGES))
    ours.load_state_dict(ref.state_dict())  # strict: same modules
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(ours(x), ref(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_new_nonlocal_blocks_leave_the_backbone_unchanged():
    # init_weights: ResNet's init_cfg (Kaiming on every Conv2d) runs first, then the block's own init_weights
    # zeroes its output conv again, so the pretrained backbone's outputs are untouched at the start.
    ours = PluginResNet(50, plugins=[dict(cfg=NL, position='after_block', blocks=((), (1, 3), (1, 3, 5)))],
                        **THREE_STAGES)
    ours.init_weights()
    for name in _plugin_names(ours, NonLocalBlock):
        assert ours.get_submodule(name).conv_out.conv.weight.abs().max() == 0
    ref = ResNet(50, **THREE_STAGES)
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not missing and all('nonlocal_block' in k for k in unexpected)
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(_eval(ours)(x), _eval(ref)(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('multi_grid', (None, (1, 2, 4)))
def test_resnetv1c_d8_matches_mmseg(multi_grid):
    kwargs = dict(depth=50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True,
                  multi_grid=multi_grid, stem_channels=16, base_channels=16)
    ref = _eval(ResNetV1c(**kwargs))
    ours = _eval(PluginResNet(deep_stem=True, **kwargs))
    ours.load_state_dict(ref.state_dict())  # strict: same modules
    dilations = [[b.conv2.dilation for b in getattr(m, f'layer{i}')] for m in (ours, ref) for i in (3, 4)]
    assert dilations[:2] == dilations[2:]
    assert dilations[0][0] == (1, 1)  # contracted: the first block of the dilation-2 stage uses 1
    x = torch.randn(1, 3, 33, 33)
    seen = []
    for a, b in zip(ours(x), ref(x)):
        assert a.shape[-1] == (9, 5, 5, 5)[len(seen)]  # output stride 8 from layer2 on
        seen.append(a)
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---- plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last) -----------------------------
def _two_se(**where):
    return [dict(cfg=dict(type='SEBlock', ratio=1 / 4, postfix=str(i)), position='after_conv3', **where)
            for i in (1, 2)]


def _effects(backbone, block):
    """How much the backbone output moves when each plugin's excitation is perturbed, and what reached plugin 2."""
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    seen = {}
    hooks = [block.se_block1.register_forward_hook(lambda m, i, o: seen.update(out1=o)),
             block.se_block2.register_forward_hook(lambda m, i, o: seen.update(in2=i[0]))]
    base = backbone(x)[2]
    for h in hooks:
        h.remove()
    effects = []
    for name in ('se_block1', 'se_block2'):
        bias = getattr(block, name).conv2.conv.bias
        with torch.no_grad():
            bias.add_(2.0)
            effects.append((backbone(x)[2] - base).abs().max().item())
            bias.sub_(2.0)
    return effects, seen['in2'] is seen['out1']


@pytest.mark.parametrize('registry', (MMDET_MODELS, MMSEG_MODELS), ids=('mmdet', 'mmseg'))
@pytest.mark.parametrize('where', (dict(stages=(False, False, True)), dict(blocks=((), (), (2, )))),
                         ids=('stages', 'blocks'))
def test_two_plugins_at_one_position_both_count(registry, where):
    backbone = _eval(registry.build(dict(type='PluginResNet', depth=50, plugins=_two_se(**where), **THREE_STAGES)))
    assert type(backbone) is PluginResNet
    block = backbone.layer3[2]
    assert block.after_conv3_plugin_names == ['se_block1', 'se_block2']
    (effect1, effect2), chained = _effects(backbone, block)
    assert chained
    assert effect1 > 1e-4 and effect2 > 1e-4


def test_mmseg_resnet_loses_the_first_plugin():
    # The bug the test above guards against: mmseg 1.2.2's Bottleneck.forward_plugin feeds x to every plugin.
    backbone = _eval(MMSegResNet(depth=50, plugins=_two_se(stages=(False, False, True)), **THREE_STAGES))
    (effect1, effect2), chained = _effects(backbone, backbone.layer3[2])
    assert not chained
    assert effect1 == 0 and effect2 > 1e-4


# ---- the configs put the blocks where the papers do -----------------------------------------------------------
@pytest.mark.parametrize('config, cls, names', [
    ('mask_rcnn_r50_nl.py', NonLocalBlock, ['layer3.4.nonlocal_block']),
    ('mask_rcnn_r50_nl5.py', NonLocalBlock, ['layer2.1.nonlocal_block', 'layer2.3.nonlocal_block',
                                             'layer3.1.nonlocal_block', 'layer3.3.nonlocal_block',
                                             'layer3.5.nonlocal_block']),
    ('mask_rcnn_r50_se.py', SEBlock, [f'layer{s + 1}.{b}.se_block' for s, n in enumerate((3, 4, 6, 3))
                                      for b in range(n)]),
])
def test_config_placement(config, cls, names):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', config))
    backbone = MMDET_MODELS.build(cfg.model.backbone)
    assert _plugin_names(backbone, cls) == names
    if cls is SEBlock:
        assert all(backbone.get_submodule(n).planes == backbone.get_submodule(n).in_channels // 16 for n in names)


# ---- bad arguments --------------------------------------------------------------------------------------------
@pytest.mark.parametrize('depth, plugin, match', [
    (50, dict(cfg=NL, position='after_block', blocks=((), (), (6, ), ())),
     r'plugins\[0\].blocks\[2\] has block index 6, outside the stage: allowed 0..5 \(or -6..-1'),
    (50, dict(cfg=NL, position='after_block', blocks=((), (), (-7, ), ())), 'has block index -7, outside the stage'),
    (50, dict(cfg=NL, position='after_block', blocks=((), (), (1, -5), ())), r'names a block twice: \(1, -5\)'),
    (50, dict(cfg=NL, position='after_block', blocks=((), (), (1.0, ), ())), 'must be a tuple of block indices'),
    (50, dict(cfg=NL, position='after_block', blocks=((), (4, ))), r'blocks must have one entry per stage'),
    (50, dict(cfg=NL, position='after_block', blocks=((), (), (4, ), ()), stages=(False, False, True, False)),
     "gives both 'stages' and 'blocks'"),
    (50, dict(cfg=NL, position='before_conv1'), r"position must be one of \('after_conv1', 'after_conv2', "
                                                r"'after_conv3', 'after_block'\)"),
    (18, dict(cfg=NL, position='after_conv2'), r"position must be one of \('after_block',\) for BasicBlock"),
    (50, dict(cfg=NL, position='after_block', block=(1, )), r"unknown keys \['block'\]"),
    (50, dict(cfg=NL), "must be a dict with 'cfg' and 'position'"),
])
def test_bad_plugins(depth, plugin, match):
    with pytest.raises(ValueError, match=match):
        PluginResNet(depth, plugins=[plugin])


def test_bad_multi_grid_and_duplicate_names():
    with pytest.raises(ValueError, match=r'multi_grid must give one dilation per block of the last stage \(3\)'):
        PluginResNet(50, multi_grid=(1, 2))
    with pytest.raises(ValueError, match="two plugins named 'se_block' in one block; give each a distinct 'postfix'"):
        PluginResNet(50, plugins=[dict(cfg=dict(type='SEBlock'), position='after_block')] * 2)
