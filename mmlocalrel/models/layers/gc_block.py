"""Global Context block (GCNet, Cao et al. 2019): context modelling -> transform -> fusion.

A drop-in for mmcv's ``ContextBlock``: same arguments, same state-dict keys (a GCNet checkpoint from mmdet's model
zoo loads as is), same initialisation. Beyond mmcv it takes 3-D (B, C, L), 4-D and 5-D (video) inputs: context is
pooled over all spatial positions into (B, C, 1, 1), so the 1x1-conv transforms keep their 2-D parameters whatever
the input rank.
"""
import torch
from mmengine.model import constant_init, kaiming_init
from mmengine.registry import MODELS
from torch import nn

from ..utils import check_choice, check_input

POOLING_TYPES = ('att', 'avg')
FUSION_TYPES = ('channel_add', 'channel_mul')


def _transform(in_channels, planes):
    # Conv -> LayerNorm -> ReLU -> Conv, the bottleneck transform of the paper (LayerNorm eases optimisation).
    return nn.Sequential(
        nn.Conv2d(in_channels, planes, kernel_size=1),
        nn.LayerNorm([planes, 1, 1]),
        nn.ReLU(inplace=True),
        nn.Conv2d(planes, in_channels, kernel_size=1))


@MODELS.register_module()
class GCBlock(nn.Module):
    """Global Context block.

    Args:
        in_channels (int): channels of the input.
        ratio (float): bottleneck ratio of the transform; ``int(in_channels * ratio)`` planes (must be >= 1).
        pooling_type (str): 'att' (softmax attention over positions, the paper's) or 'avg' (SE-style).
        fusion_types (Sequence[str]): non-empty subset of {'channel_add', 'channel_mul'}.
    """

    # mmcv's name for it: a ResNet plugin is named after _abbr_ (layer2.0.context_block.*), so mmdet's GCNet
    # model-zoo checkpoints load into GCBlock plugins unchanged
    _abbr_ = 'context_block'

    def __init__(self, in_channels, ratio, pooling_type='att', fusion_types=('channel_add', )):
        super().__init__()
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'GCBlock: in_channels must be a positive int, got {in_channels!r}')
        check_choice('GCBlock', 'pooling_type', pooling_type, POOLING_TYPES)
        if not isinstance(fusion_types, (list, tuple)) or len(fusion_types) == 0:
            raise ValueError(f'GCBlock: fusion_types must be a non-empty list/tuple drawn from {FUSION_TYPES}, '
                             f'got {fusion_types!r}')
        for fusion in fusion_types:
            check_choice('GCBlock', 'fusion_types', fusion, FUSION_TYPES)
        if not ratio > 0:
            raise ValueError(f'GCBlock: ratio must be > 0, got {ratio!r}')
        self.planes = int(in_channels * ratio)
        if self.planes < 1:
            raise ValueError(f'GCBlock: ratio={ratio} gives int({in_channels} * {ratio}) = 0 planes; '
                             f'ratio must be >= 1/{in_channels} for in_channels={in_channels}')
        self.in_channels = in_channels
        self.ratio = ratio
        self.pooling_type = pooling_type
        self.fusion_types = tuple(fusion_types)
        if pooling_type == 'att':
            self.conv_mask = nn.Conv2d(in_channels, 1, kernel_size=1)
            self.softmax = nn.Softmax(dim=2)
        else:
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.channel_add_conv = _transform(in_channels, self.planes) if 'channel_add' in fusion_types else None
        self.channel_mul_conv = _transform(in_channels, self.planes) if 'channel_mul' in fusion_types else None
        self.reset_parameters()

    def init_weights(self):
        # mmengine calls a child's init_weights after the parent's init_cfg (e.g. ResNet's Kaiming over every
        # Conv2d), so the zero start survives inside a backbone, which mmcv's ContextBlock does not ensure.
        self.reset_parameters()

    def reset_parameters(self):
        # As mmcv: the fusion's last conv starts at zero, so a new block is the identity (add) or x * 0.5 (mul).
        if self.pooling_type == 'att':
            kaiming_init(self.conv_mask, mode='fan_in')
            self.conv_mask.inited = True
        for transform in (self.channel_add_conv, self.channel_mul_conv):
            if transform is not None:
                constant_init(transform[-1], val=0)

    def context_attention(self, x):
        """Softmax over positions of the attention pooling, (B, N) with N = prod(spatial); 'att' pooling only."""
        if self.pooling_type != 'att':
            raise RuntimeError("GCBlock.context_attention: only pooling_type='att' has an attention map")
        flat = check_input('GCBlock', x, self.in_channels, dims=(1, 2, 3)).flatten(2)  # (B, C, N)
        w = self.conv_mask.weight.view(1, self.in_channels)
        logits = torch.matmul(w, flat).squeeze(1) + self.conv_mask.bias  # (B, N)
        return logits.softmax(dim=1)

    def spatial_pool(self, x):
        """Global context (B, C, 1, 1) of an input with any number of spatial dims."""
        flat = x.flatten(2)  # (B, C, N)
        if self.pooling_type == 'att':
            attn = self.context_attention(x)  # (B, N)
            context = torch.bmm(flat, attn.unsqueeze(2))  # (B, C, 1)
        else:
            context = flat.mean(dim=2, keepdim=True)
        return context.unsqueeze(-1)

    def forward(self, x):
        check_input('GCBlock', x, self.in_channels, dims=(1, 2, 3))
        context = self.spatial_pool(x)
        shape = context.shape[:2] + (1, ) * (x.dim() - 2)  # broadcast back over the spatial dims
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context)).view(shape)
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context).view(shape)
        return out
