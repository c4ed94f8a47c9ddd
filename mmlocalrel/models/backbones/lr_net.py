"""LR-Net backbones (Hu et al., "Local Relation Networks for Image Recognition", ICCV 2019).

LR-ResNet-26/50/101: mmdet's ResNet with every bottleneck 3x3 conv replaced by a 7x7 local relation layer and the
7x7 stem conv replaced by a 1x1 conv + a 7x7 local relation layer (stride 2). As in the paper's Table 1, the
bottleneck width is raised to 100/200/400/800 (``width_ratio`` = 100 / 64 of ResNet's planes) so that the cheaper
relation layer keeps ResNet's FLOPs, each rounded to a multiple of m (100 -> 104 for m = 8: the channel groups must
divide the width; the paper does not say how it split 100 channels into groups of 8); outputs keep ResNet's 256/512/1024/2048 channels, so necks and heads built for
ResNet work unchanged. Parameter counts with the 1000-class classification head: LR-Net-26 14.6M (paper: 14.7M),
LR-Net-50 23.4M, LR-Net-101 40.8M (tests/models/backbones/test_lr_net.py checks the first).
"""
from collections import OrderedDict

from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import Bottleneck, ResNet
from mmdet.models.layers import ResLayer
from mmengine.model import Sequential
from mmengine.registry import MODELS
from torch import nn

DEFAULT_RELATION_CFG = dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8,
                            composability='squared_diff')


class LRBottleneck(Bottleneck):
    """mmdet's Bottleneck at width ~``planes * width_ratio`` with a local relation layer as conv2.

    conv2 is built through the Bottleneck's own conv-type path (``dcn``) from ``relation_cfg``; conv3 (and the
    after_conv3 plugins) then map the wider middle back to ``planes * 4`` channels.
    """

    def __init__(self, inplanes, planes, width_ratio=100 / 64, relation_cfg=DEFAULT_RELATION_CFG, dcn=None,
                 plugins=None, **kwargs):
        if dcn is not None:
            raise ValueError('LRBottleneck: dcn must be None (conv2 is the local relation layer; set relation_cfg)')
        if not width_ratio > 0:
            raise ValueError(f'LRBottleneck: width_ratio must be > 0, got {width_ratio!r}')
        # Rounded to a multiple of m so the channel groups divide it (the paper's 100 becomes 104 for m=8).
        m = relation_cfg.get('channels_per_group', 8)
        mid = m * max(1, int(planes * width_ratio / m + 0.5))
        super().__init__(inplanes, mid, dcn=dict(relation_cfg), plugins=None, **kwargs)
        norm_cfg, conv_cfg = self.norm_cfg, self.conv_cfg
        self.planes = planes
        self.mid_channels = mid
        self.relation_cfg = relation_cfg
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.conv3 = build_conv_layer(conv_cfg, mid, planes * self.expansion, kernel_size=1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.plugins = plugins
        self.with_plugins = plugins is not None
        if self.with_plugins:
            allowed_position = ('after_conv1', 'after_conv2', 'after_conv3')
            for plugin in plugins:
                if plugin.get('position') not in allowed_position:
                    raise ValueError(f'LRBottleneck: plugin position must be one of {allowed_position}, '
                                     f'got {plugin.get("position")!r}')
            cfgs = {pos: [p['cfg'] for p in plugins if p['position'] == pos] for pos in allowed_position}
            self.after_conv1_plugins = cfgs['after_conv1']
            self.after_conv2_plugins = cfgs['after_conv2']
            self.after_conv3_plugins = cfgs['after_conv3']
            self.after_conv1_plugin_names = self.make_block_plugins(mid, self.after_conv1_plugins)
            self.after_conv2_plugin_names = self.make_block_plugins(mid, self.after_conv2_plugins)
            self.after_conv3_plugin_names = self.make_block_plugins(planes * self.expansion,
                                                                    self.after_conv3_plugins)


@MODELS.register_module()
class LRNet(ResNet):
    """LR-ResNet backbone (depth 26, 50 or 101), with mmdet ResNet's interface.

    Args:
        depth (int): 26, 50 or 101.
        width_ratio (float): bottleneck width relative to ResNet's planes; 100 / 64 (the paper's 100, 200, 400,
            800 for base_channels=64).
        relation_cfg (dict): the conv-type config of every local relation layer (stem and bottlenecks); default
            ``dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8,
            composability='squared_diff')``.
        **kwargs: mmdet ResNet's arguments (out_indices, frozen_stages, norm_cfg, norm_eval, base_channels,
            stem_channels, strides, dilations, style, plugins, with_cp, zero_init_residual, init_cfg, ...).
            ``deep_stem``, ``avg_down`` are supported as in ResNet except deep_stem (the stem is the paper's);
            ``dcn`` is not (every conv2 is a relation layer already).
    """

    arch_settings = {
        26: (LRBottleneck, (2, 2, 2, 2)),
        50: (LRBottleneck, (3, 4, 6, 3)),
        101: (LRBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth, width_ratio=100 / 64, relation_cfg=DEFAULT_RELATION_CFG, dcn=None, deep_stem=False,
                 init_cfg=None, pretrained=None, **kwargs):
        if depth not in self.arch_settings:
            raise ValueError(f'LRNet: depth must be one of {tuple(self.arch_settings)}, got {depth!r}')
        if dcn is not None:
            raise ValueError('LRNet: dcn must be None (every bottleneck conv2 is a local relation layer; '
                             'configure it with relation_cfg)')
        if deep_stem:
            raise ValueError('LRNet: deep_stem must be False (the stem is 1x1 conv + 7x7 local relation)')
        if not isinstance(relation_cfg, dict) or 'type' not in relation_cfg:
            raise ValueError(f'LRNet: relation_cfg must be a conv-type dict with a "type", got {relation_cfg!r}')
        if not width_ratio > 0:
            raise ValueError(f'LRNet: width_ratio must be > 0, got {width_ratio!r}')
        # Read by _make_stem_layer / make_res_layer, which ResNet.__init__ calls.
        self.width_ratio = width_ratio
        self.relation_cfg = dict(relation_cfg)
        self._zero_init_blocks = init_cfg is None and pretrained is None
        super().__init__(depth, init_cfg=init_cfg, pretrained=pretrained, **kwargs)

    def _make_stem_layer(self, in_channels, stem_channels):
        # ResNet.forward runs conv1 -> norm1 -> relu -> maxpool, and _freeze_stages freezes conv1 and norm1, so the
        # paper's stem (1x1 conv -> BN -> ReLU -> 7x7 relation, stride 2) goes in conv1 and its last BN in norm1.
        self.conv1 = Sequential(
            OrderedDict(
                conv=build_conv_layer(self.conv_cfg, in_channels, stem_channels, kernel_size=1, bias=False),
                norm=build_norm_layer(self.norm_cfg, stem_channels)[1],
                relu=nn.ReLU(inplace=True),
                relation=build_conv_layer(self.relation_cfg, stem_channels, stem_channels, kernel_size=7, stride=2,
                                          padding=3, bias=False)))
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def make_res_layer(self, **kwargs):
        if self.zero_init_residual and self._zero_init_blocks and kwargs.get('init_cfg') is None:
            # ResNet only sets this for its own Bottleneck class: each block starts as the identity.
            kwargs['init_cfg'] = dict(type='Constant', val=0, override=dict(name='norm3'))
        return ResLayer(width_ratio=self.width_ratio, relation_cfg=self.relation_cfg, **kwargs)
