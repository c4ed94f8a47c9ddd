"""Squeeze-and-Excitation block (Hu et al., CVPR 2018): x * sigmoid(W2 relu(W1 avgpool(x))).

In GCNet's framework it is the global-context block with average pooling and multiplicative fusion. mmdet's
``SELayer`` takes ``channels`` and is not registered, so no config can insert it through ResNet's ``plugins`` (which
passes ``in_channels``); this one can, e.g. in every bottleneck, on the residual branch before the sum as in the
paper::

    plugins=[dict(cfg=dict(type='SEBlock', ratio=1 / 16), position='after_conv3')]

State-dict keys (``conv1.conv``, ``conv2.conv``) are those of mmdet's SELayer, whose weights load as they are.
"""
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS
from torch import nn

from ..utils import check_input


@MODELS.register_module()
class SEBlock(nn.Module):
    """Squeeze-and-Excitation block.

    Args:
        in_channels (int): channels of the input (and output).
        ratio (float): bottleneck ratio; ``int(in_channels * ratio)`` hidden channels (must be >= 1). The paper's
            r = 16 is ``ratio=1/16``.
        act_cfg (dict | Sequence[dict]): activations after the squeeze and the excitation conv; one dict is used for
            both. Default (ReLU, Sigmoid), the paper's.
        conv_cfg (dict | None): the two 1x1 convs (they run on the pooled (B, C, 1, 1) context whatever the input
            rank, so inputs may be (B, C, L), (B, C, H, W) or (B, C, T, H, W)).
    """

    _abbr_ = 'se_block'

    def __init__(self, in_channels, ratio=1 / 16, act_cfg=(dict(type='ReLU'), dict(type='Sigmoid')), conv_cfg=None):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'SEBlock: in_channels must be a positive int, got {in_channels!r}')
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
            raise ValueError(f'SEBlock: ratio must be a number > 0 (e.g. 1/16), got {ratio!r}')
        self.planes = int(in_channels * ratio)
        if self.planes < 1:
            raise ValueError(f'SEBlock: ratio={ratio} gives int({in_channels} * {ratio}) = 0 hidden channels; '
                             f'ratio must be >= 1/{in_channels} for in_channels={in_channels}')
        if isinstance(act_cfg, dict):
            act_cfg = (act_cfg, act_cfg)
        if not (isinstance(act_cfg, (list, tuple)) and len(act_cfg) == 2
                and all(isinstance(a, dict) for a in act_cfg)):
            raise ValueError(f'SEBlock: act_cfg must be a dict or a pair of dicts (squeeze, excitation), '
                             f'got {act_cfg!r}')
        self.in_channels = in_channels
        self.ratio = ratio
        self.conv1 = ConvModule(in_channels, self.planes, kernel_size=1, conv_cfg=conv_cfg, act_cfg=act_cfg[0])
        self.conv2 = ConvModule(self.planes, in_channels, kernel_size=1, conv_cfg=conv_cfg, act_cfg=act_cfg[1])

    def channel_weights(self, x):
        """Excitation (B, C): the per-channel factors the block multiplies ``x`` by."""
        check_input('SEBlock', x, self.in_channels, dims=(1, 2, 3))
        context = x.flatten(2).mean(dim=2)[:, :, None, None]  # squeeze over every spatial dim, (B, C, 1, 1)
        return self.conv2(self.conv1(context)).flatten(1)

    def forward(self, x):
        weights = self.channel_weights(x)
        return x * weights.view(weights.shape + (1, ) * (x.dim() - 2))

    def extra_repr(self):
        return f'in_channels={self.in_channels}, planes={self.planes}'
