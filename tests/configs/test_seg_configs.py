"""The segmentation configs under mmseg's scope: the backbone is mmseg's ResNetV1c-D8 (same modules, checkpoint keys
and outputs) with the blocks where the config says, and plugins at one position are chained in the segmentor."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmlocalrel  # noqa: F401
from mmlocalrel.models import GCBlock, NonLocalBlock, SEBlock
from mmlocalrel.models.backbones import PluginResNet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG = sorted(glob.glob(osp.join(ROOT, 'configs', 'seg', '*.py')))
NARROW = dict(base_channels=16, stem_channels=16)
BLOCKS = (1, 2, 3, 4)  # stage index -> layer name suffix


def _cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'seg', name))


def _plugin_names(module, cls):
    return [name for name, m in module.named_modules() if isinstance(m, cls)]


def _build(model_cfg):
    init_default_scope('mmseg')
    model_cfg = model_cfg.copy()
    model_cfg.pretrained = None
    model_cfg.backbone.init_cfg = None
    return MODELS.build(model_cfg)


def test_seg_configs_are_found():
    names = [osp.basename(p) for p in SEG]
    for block in ('gc', 'se', 'nl', 'nl5'):
        for data in ('cityscapes-512x1024', 'ade20k-512x512'):
            assert f'fcn_r50-d8_{block}_{data}.py' in names


@pytest.mark.parametrize('path', SEG, ids=osp.basename)
def test_backbone_is_mmseg_resnetv1c_d8(path):
    """Without its blocks, the config's backbone is mmseg's ResNetV1c-D8 of the mmseg base config: the same state-dict
    keys (so open-mmlab://resnet50_v1c loads) and the same outputs at output stride 8."""
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg' and cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    ours = cfg.model.backbone.copy()
    ours.update(plugins=None, **NARROW)
    ref = dict(type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
               strides=(1, 2, 1, 1), norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
               contract_dilation=True, **NARROW)
    init_default_scope('mmseg')
    ours, ref = MODELS.build(ours), MODELS.build(ref)
    ours.eval()  # (mmdet's ResNet.train returns None)
    ref.eval()
    assert type(ours) is PluginResNet
    ours.load_state_dict(ref.state_dict())  # strict
    x = torch.randn(1, 3, 40, 40)
    outs = ours(x)
    assert [o.shape[-1] for o in outs] == [10, 5, 5, 5]
    for a, b in zip(outs, ref(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize('block, cls, names', [
    ('gc', GCBlock, [f'layer{s}.{b}.context_block' for s, n in zip(BLOCKS, (3, 4, 6, 3)) if s > 1 for b in range(n)]),
    ('se', SEBlock, [f'layer{s}.{b}.se_block' for s, n in zip(BLOCKS, (3, 4, 6, 3)) for b in range(n)]),
    ('nl', NonLocalBlock, ['layer3.4.nonlocal_block']),
    ('nl5', NonLocalBlock, ['layer2.1.nonlocal_block', 'layer2.3.nonlocal_block', 'layer3.1.nonlocal_block',
                            'layer3.3.nonlocal_block', 'layer3.5.nonlocal_block']),
])
@pytest.mark.parametrize('data', ('cityscapes-512x1024', 'ade20k-512x512'))
def test_config_placement(block, cls, names, data):
    cfg = _cfg(f'fcn_r50-d8_{block}_{data}.py')
    cfg.model.backbone.update(NARROW)
    init_default_scope('mmseg')
    backbone = MODELS.build(cfg.model.backbone)
    assert _plugin_names(backbone, cls) == names
    ratio = {GCBlock: 16, SEBlock: 16, NonLocalBlock: 2}[cls]
    for name in names:
        plugin = backbone.get_submodule(name)
        assert getattr(plugin, 'planes', getattr(plugin, 'inter_channels', None)) == plugin.in_channels // ratio


# ---- two plugins at one position, in a segmentor built under mmseg's scope ---------------------------------------
def _gc_then_se(backbone_type):
    """The GC config's FCN, narrow, with an SE block after the GC block at after_conv3 of c3-c5."""
    cfg = _cfg('fcn_r50-d8_gc_cityscapes-512x1024.py')
    model = cfg.model
    model.backbone.update(type=backbone_type, **NARROW)
    model.backbone.plugins.append(dict(cfg=dict(type='SEBlock', ratio=1 / 4), stages=(False, True, True, True),
                                       position='after_conv3'))
    model.decode_head.update(in_channels=512, channels=16)
    model.auxiliary_head.update(in_channels=256, channels=16)
    if backbone_type == 'ResNetV1c':
        model.backbone.pop('deep_stem')
    segmentor = _build(model)  # PyTorch's default init: no zero-initialised norm3 that would hide the SE block
    segmentor.eval()
    torch.manual_seed(0)
    return segmentor


def _effects(segmentor):
    """How much the segmentor's logits move when the GC block, then the SE block, of one bottleneck is perturbed;
    and whether the SE block received the GC block's output."""
    block = segmentor.backbone.layer3[2]
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    metas = [dict(img_shape=(48, 48), ori_shape=(48, 48), pad_shape=(48, 48))]
    seen = {}
    hooks = [block.context_block.register_forward_hook(lambda m, i, o: seen.update(gc_out=o)),
             block.se_block.register_forward_hook(lambda m, i, o: seen.update(se_in=i[0]))]
    with torch.no_grad():
        base = segmentor.encode_decode(x, metas)
        for h in hooks:
            h.remove()
        effects = []
        # GC's last conv starts at zero (the block is the identity); SE's excitation bias shifts its channel weights
        for bias in (block.context_block.channel_add_conv[-1].bias, block.se_block.conv2.conv.bias):
            original = bias.clone()
            bias.add_(torch.linspace(-2, 2, bias.numel()))
            effects.append((segmentor.encode_decode(x, metas) - base).abs().max().item())
            bias.copy_(original)
    return effects, seen['se_in'] is seen['gc_out']


def test_two_plugins_at_one_position_both_change_the_segmentation():
    segmentor = _gc_then_se('PluginResNet')
    block = segmentor.backbone.layer3[2]
    assert block.after_conv3_plugin_names == ['context_block', 'se_block']
    (gc_effect, se_effect), chained = _effects(segmentor)
    assert chained
    assert gc_effect > 1e-4 and se_effect > 1e-4


def test_mmseg_resnet_drops_the_first_of_two_plugins():
    # What the test above guards against, with mmseg 1.2.2's own ResNetV1c in the same segmentor: every plugin of a
    # position gets the position's input and only the last one's output goes on, so the GC block changes nothing.
    segmentor = _gc_then_se('ResNetV1c')
    assert type(segmentor.backbone).__module__.startswith('mmseg.')
    (gc_effect, se_effect), chained = _effects(segmentor)
    assert not chained
    assert gc_effect == 0 and se_effect > 1e-4
