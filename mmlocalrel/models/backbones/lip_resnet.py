"""LIP-ResNet (Gao, Wang, Wu; ICCV 2019): mmdet's ResNet with every downsampling done by LIP.

As in the authors' code (sebgao/LIP, ``imagenet/lip_resnet.py``), which is what gives the paper's parameter counts
(LIP-ResNet-50 23.9M, -101 42.9M with the 1000-class head):

* the stem's 3x3/2 max-pool becomes LIP with the simplified logit module (3x3 conv -> IN -> 12*sigmoid);
* in the first block of a stride-2 stage, the stride-2 3x3 conv becomes LIP (3x3/2) followed by a stride-1
  **1x1** conv, and the shortcut's stride-2 1x1 conv becomes LIP -> 1x1 conv -> BN. Both LIPs take their logits
  from one bottleneck trunk on the block's input (1x1 -> IN -> ReLU -> 3x3 -> IN -> ReLU, width 128), each through
  its own projection head (1x1 -> IN -> 12*sigmoid);
* everything else is mmdet's ResNet, so its interface holds: out_indices, frozen_stages, norm_eval, norm_cfg,
  base_channels, stem_channels, deep_stem, strides, dilations, dcn, plugins, with_cp, init_cfg, ...

LIP replaces downsampling itself, so it is a backbone rather than a ``plugins`` entry.
"""
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import Bottleneck, ResNet
from mmengine.model import Sequential
from mmengine.registry import MODELS

from ..layers.lip import DEFAULT_NORM_CFG, LIP2d, bottleneck_trunk
from ..utils import check_choice


def _head(width, coeff, norm_cfg):
    return dict(type='LIPProjectionLogit', in_channels=width, coeff=coeff, norm_cfg=norm_cfg)


class LIPBottleneck(Bottleneck):
    """mmdet's Bottleneck; with ``stride=2``: LIP + 1x1 conv in place of the stride-2 3x3 conv, and the shortcut
    pooled by LIP before the downsample's 1x1 conv (``downsample`` must then be the stride-1 conv -> norm).

    Args (beyond mmdet's Bottleneck):
        lip_width (int): width of the logit trunk shared by the block's two LIPs. Default 128.
        lip_coeff (float): amplification of the logits' sigmoid. Default 12.
        lip_norm_cfg (dict): normalisation inside the logit modules. Default affine InstanceNorm.
    """

    def __init__(self, inplanes, planes, stride=1, downsample=None, conv_cfg=None, lip_width=128, lip_coeff=12.0,
                 lip_norm_cfg=DEFAULT_NORM_CFG, **kwargs):
        if stride not in (1, 2):
            raise ValueError(f'LIPBottleneck: stride must be 1 or 2, got {stride!r}')
        super().__init__(inplanes, planes, stride=1, downsample=downsample, conv_cfg=conv_cfg, **kwargs)
        self.stride = stride
        self.with_lip = stride == 2
        if self.with_lip:
            if downsample is None:
                raise ValueError('LIPBottleneck: a stride-2 block needs its downsample (1x1 conv -> norm)')
            self.lip_trunk = bottleneck_trunk(inplanes, lip_width, lip_norm_cfg)
            self.lip = LIP2d(planes, logit_cfg=_head(lip_width, lip_coeff, lip_norm_cfg))
            self.downsample_lip = LIP2d(inplanes, logit_cfg=_head(lip_width, lip_coeff, lip_norm_cfg))
            # After LIP the 3x3 conv becomes a 1x1 one (the authors' design; with a 3x3 conv the counts are ~2.75M
            # higher than the paper's). It replaces any dcn conv2 of this block.
            self.conv2 = build_conv_layer(conv_cfg, planes, planes, kernel_size=1, bias=False)

    def forward(self, x):

        def _inner_forward(x):
            identity = x
            shared = self.lip_trunk(x) if self.with_lip else None
            out = self.relu(self.norm1(self.conv1(x)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
            if self.with_lip:
                out = self.lip(out, guide=shared)
            out = self.relu(self.norm2(self.conv2(out)))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.norm3(self.conv3(out))
            if self.with_plugins:
                out = self.forward_plugin(out, self.after_conv3_plugin_names)
            if self.downsample is not None:
                identity = self.downsample(self.downsample_lip(x, guide=shared) if self.with_lip else x)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


@MODELS.register_module()
class LIPResNet(ResNet):
    """LIP-ResNet backbone: mmdet's :class:`ResNet` (all its arguments) with LIP for every downsampling.

    Args (beyond mmdet's ResNet):
        depth (int): 50, 101 or 152 (bottleneck ResNets; the paper's are 50 and 101).
        lip_width (int): width of the bottleneck logit trunk in stride-2 blocks. Default 128.
        lip_coeff (float): amplification of the logits' sigmoid. Default 12.
        lip_norm_cfg (dict): normalisation inside the logit modules. Default affine InstanceNorm.

    ``style`` must be 'pytorch' (the stride sits on the 3x3 conv, which LIP replaces), ``avg_down`` False (LIP is
    the shortcut's pooling) and every stage stride 1 or 2 (LIP pools 3x3/2). Stages of stride 1 (e.g. dilated
    segmentation backbones) keep plain blocks. ``frozen_stages >= 0`` freezes the stem's LIP with the stem.
    """

    def __init__(self, depth, lip_width=128, lip_coeff=12.0, lip_norm_cfg=DEFAULT_NORM_CFG, **kwargs):
        check_choice('LIPResNet', 'depth', depth, (50, 101, 152))
        check_choice('LIPResNet', 'style', kwargs.get('style', 'pytorch'), ('pytorch', ))
        if kwargs.get('avg_down', False):
            raise ValueError('LIPResNet: avg_down must be False (LIP pools the shortcut), got True')
        for stride in kwargs.get('strides', (1, 2, 2, 2)):
            check_choice('LIPResNet', 'strides', stride, (1, 2))
        if not isinstance(lip_width, int) or isinstance(lip_width, bool) or lip_width < 1:
            raise ValueError(f'LIPResNet: lip_width must be a positive int, got {lip_width!r}')
        if not isinstance(lip_coeff, (int, float)) or isinstance(lip_coeff, bool) or not lip_coeff > 0:
            raise ValueError(f'LIPResNet: lip_coeff must be a number > 0, got {lip_coeff!r}')
        # ResNet.__init__ builds the stages (make_res_layer) and the stem, which read these.
        self._lip_args = dict(lip_width=lip_width, lip_coeff=lip_coeff, lip_norm_cfg=lip_norm_cfg)
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels, stem_channels):
        super()._make_stem_layer(in_channels, stem_channels)
        self.maxpool = LIP2d(
            stem_channels,
            logit_cfg=dict(type='LIPSimplifiedLogit', coeff=self._lip_args['lip_coeff'],
                           norm_cfg=self._lip_args['lip_norm_cfg']))

    def make_res_layer(self, block, inplanes, planes, num_blocks, stride=1, avg_down=False, conv_cfg=None,
                       norm_cfg=dict(type='BN'), **kwargs):
        # ResNet passes its arch block (Bottleneck, which also selects its zero_init_residual init_cfg); the stage
        # is built of LIPBottlenecks, which keep Bottleneck's layout and names.
        expansion = LIPBottleneck.expansion
        downsample = None
        if stride != 1 or inplanes != planes * expansion:
            downsample = Sequential(
                build_conv_layer(conv_cfg, inplanes, planes * expansion, kernel_size=1, stride=1, bias=False),
                build_norm_layer(norm_cfg, planes * expansion)[1])
        blocks = [
            LIPBottleneck(inplanes, planes, stride=stride, downsample=downsample, conv_cfg=conv_cfg,
                          norm_cfg=norm_cfg, **self._lip_args, **kwargs)
        ]
        for _ in range(1, num_blocks):
            blocks.append(
                LIPBottleneck(planes * expansion, planes, stride=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                              **self._lip_args, **kwargs))
        return Sequential(*blocks)

    def _freeze_stages(self):
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            self.maxpool.eval()
            for param in self.maxpool.parameters():
                param.requires_grad = False
