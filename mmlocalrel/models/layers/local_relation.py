"""Local relation layer (Hu et al., "Local Relation Networks for Image Recognition", ICCV 2019).

Aggregates each k x k window with weights computed from the pixels themselves: 1x1 query and key maps give one
scalar per group of m channels, the appearance composability A(q, k) plus a geometric prior over the relative
position (2, k, k) -> 1x1 conv -> ReLU -> 1x1 conv -> (G, k*k) gives the logits, a softmax over the in-image taps the
weights, and a final 1x1 conv mixes the aggregated channels (see mmlocalrel.ops.local_relation for the fused op).

It is a conv type (``build_conv_layer``'s signature), so it replaces a ResNet bottleneck's 3x3 conv through
``dcn=dict(type='LocalRelation2d', relation_kernel_size=7)`` with ``stage_with_dcn``. mmdet's Bottleneck passes
``kernel_size=3`` itself, so the window size of the relation comes from ``relation_kernel_size`` when given (a
config cannot repeat ``kernel_size``: build_conv_layer would receive it twice).
"""
import torch
from mmengine.model import kaiming_init, normal_init
from mmengine.registry import MODELS
from torch import nn

from ...ops.local_relation import COMPOSABILITIES, local_relation
from ..utils import check_choice, check_input


def relative_positions(kernel_size):
    """(2, k, k) float tensor of the (dy, dx) offsets of each tap from the window centre, in taps."""
    r = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
    dy, dx = torch.meshgrid(r, r, indexing='ij')
    return torch.stack([dy, dx])


def _as_int(owner, name, value):
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f'{owner}: {name} must be an int or a square pair (a, a), got {value!r}')
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{owner}: {name} must be an int, got {value!r}')
    return value


@MODELS.register_module()
class LocalRelation2d(nn.Module):
    """Local relation layer, usable wherever a conv layer is built.

    Args:
        in_channels (int): channels of the input (the value aggregated); divisible by ``channels_per_group``.
        out_channels (int): channels of the output (the final 1x1 conv).
        kernel_size (int): window size k (odd). Default 7, the paper's.
        stride (int): output is ceil(H / stride) x ceil(W / stride); windows are centred on p' * stride.
        padding (int | None): accepted for the conv signature only. The windows are always centred (taps outside
            the image are left out of the softmax), which equals a conv with padding = dilation * (kernel_size // 2);
            any other value raises, since this layer cannot produce the output size it implies.
        dilation (int): spacing of the taps.
        groups (int): must be 1 (channel grouping is ``channels_per_group``); present for the conv signature.
        bias (bool): bias of the output 1x1 conv.
        channels_per_group (int): m, the channels sharing one set of aggregation weights; G = in_channels / m query
            and key channels. Default 8, the paper's.
        composability (str): 'squared_diff' (-(q - k)^2, the paper's default), 'abs_diff' (-|q - k|) or 'dot'.
        relation_kernel_size (int | None): when given, the window size, overriding ``kernel_size`` (for configs
            replacing a 3x3 conv, whose builder passes kernel_size=3).
        geo_prior_channels (int | None): hidden channels of the geometric prior; default max(G // 2, 1).
    """

    def __init__(self,
                 in_channels,
                 out_channels,
                 kernel_size=7,
                 stride=1,
                 padding=None,
                 dilation=1,
                 groups=1,
                 bias=False,
                 channels_per_group=8,
                 composability='squared_diff',
                 relation_kernel_size=None,
                 geo_prior_channels=None):
        super().__init__()
        owner = 'LocalRelation2d'
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('channels_per_group', channels_per_group)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{owner}: {name} must be a positive int, got {value!r}')
        kernel_size = _as_int(owner, 'kernel_size', kernel_size)
        stride = _as_int(owner, 'stride', stride)
        dilation = _as_int(owner, 'dilation', dilation)
        if stride < 1 or dilation < 1:
            raise ValueError(f'{owner}: stride and dilation must be >= 1, got stride={stride}, dilation={dilation}')
        if padding is not None:
            padding = _as_int(owner, 'padding', padding)
            if padding != dilation * (kernel_size // 2):
                raise ValueError(f'{owner}: padding must be None or dilation * (kernel_size // 2) = '
                                 f'{dilation * (kernel_size // 2)} (windows are always centred, output '
                                 f'ceil(H / stride)), got {padding}')
        if groups != 1:
            raise ValueError(f'{owner}: groups must be 1 (channels are grouped by channels_per_group), got {groups!r}')
        k = kernel_size if relation_kernel_size is None else _as_int(owner, 'relation_kernel_size',
                                                                   relation_kernel_size)
        if k < 1 or k % 2 == 0:
            name = 'kernel_size' if relation_kernel_size is None else 'relation_kernel_size'
            raise ValueError(f'{owner}: {name} must be odd and >= 1, got {k}')
        if in_channels % channels_per_group != 0:
            raise ValueError(f'{owner}: in_channels ({in_channels}) must be divisible by channels_per_group '
                             f'({channels_per_group})')
        check_choice(owner, 'composability', composability, COMPOSABILITIES)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = k
        self.stride = stride
        self.dilation = dilation
        self.channels_per_group = channels_per_group
        self.composability = composability
        self.relation_groups = in_channels // channels_per_group
        G = self.relation_groups
        hidden = max(G // 2, 1) if geo_prior_channels is None else geo_prior_channels
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f'{owner}: geo_prior_channels must be a positive int or None, got {geo_prior_channels!r}')

        self.query_conv = nn.Conv2d(in_channels, G, kernel_size=1)
        self.key_conv = nn.Conv2d(in_channels, G, kernel_size=1)
        # Fixed relative positions (not learned, not random); the learned part is the prior network.
        self.register_buffer('relative_position', relative_positions(k), persistent=False)
        self.geo_prior = nn.Sequential(
            nn.Conv2d(2, hidden, kernel_size=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, G, kernel_size=1))
        self.out_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)
        self.init_weights()

    def init_weights(self):
        # Query/key keep unit scale for unit-variance input (std 1/sqrt(C_in)), so the initial logits neither
        # saturate the softmax nor vanish. Called again by mmengine after a backbone's blanket Kaiming init.
        for conv in (self.query_conv, self.key_conv):
            normal_init(conv, std=self.in_channels**-0.5, bias=0)
        kaiming_init(self.geo_prior[0], nonlinearity='relu')
        kaiming_init(self.geo_prior[2], a=1, nonlinearity='leaky_relu')
        kaiming_init(self.out_conv, mode='fan_out', nonlinearity='relu')

    def geometric_prior(self):
        """(G, k*k) prior of each group for each tap (row-major taps)."""
        pos = self.relative_position.to(self.geo_prior[0].weight.dtype).unsqueeze(0)
        return self.geo_prior(pos).view(self.relation_groups, self.kernel_size**2)

    def forward(self, x):
        check_input('LocalRelation2d', x, self.in_channels)
        s = self.stride
        key = self.key_conv(x)
        # A 1x1 conv commutes with subsampling: the query is only needed at the window centres p' * stride.
        query = self.query_conv(x if s == 1 else x[:, :, ::s, ::s])
        geo = self.geometric_prior()
        dtype = x.dtype  # under autocast the 1x1 convs may return another dtype than the input
        out = local_relation(query.to(dtype), key.to(dtype), x, geo.to(dtype), self.kernel_size, s, self.dilation,
                             self.composability)
        return self.out_conv(out)

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, kernel_size={self.kernel_size}, '
                f'stride={self.stride}, dilation={self.dilation}, channels_per_group={self.channels_per_group}, '
                f"composability='{self.composability}'")
