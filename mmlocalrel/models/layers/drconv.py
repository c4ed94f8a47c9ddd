"""Dynamic Region-Aware Convolution (DRConv, Chen et al., CVPR 2021) as a conv type.

Every output pixel is assigned one of m regions by a guided mask, and each region has its own kernel generated
from the input sample:

- guided feature F = conv_guide(x), m channels, same stride/padding/dilation as the main convolution so it lies on
  the output grid; mask M = argmax_t F_t (hard, forward); backward reaches F through the paper's softmax
  surrogate dL/dF = softmax'(F)^T dL/dF^, dL/dF^_t(p) = <dL/dY(p), Y_t(p)> (``mmlocalrel.ops.region_conv``).
- filter generator G(x): adaptive average pool to k x k -> 1x1 conv -> sigmoid -> grouped (groups=m) 1x1 conv,
  giving the m kernels of each sample.
- out = region_conv(x, kernels, M): one convolution's multiply-adds whatever m (compiled CPU/CUDA kernels).

Filter generator, ``generator='modulated'`` (default) versus ``'full'``:
    'full' is the form of the official and third-party code: the grouped 1x1 conv emits every kernel entry,
    m*C_out*C_in channels from m*m hidden ones, i.e. m^2*C_in*C_out weights (4.19M at 256->256, m=8, plus 0.52M of
    bias, against 0.59M for the 3x3 conv it replaces; +78.9M over ResNet-50's c3-c5).
    'modulated' keeps the paper's pipeline (pool -> 1x1 -> sigmoid -> grouped 1x1, groups=m, m*m hidden units)
    but the grouped conv emits, per region, per output channel and per tap, a modulation of one learned base kernel
    W (C_out, C_in, k, k): kernels[b, t, o, :, i, j] = W[o, :, i, j] * (1 + D[b, t, o, i, j]). That is 0.62M
    parameters at 256->256, m=8 (W 0.59M + generator 35K), so DRConv costs about the parameters of the
    convolution it replaces; regions still get distinct, input-dependent kernels (each region reweights every
    output channel's taps). The grouped conv starts at zero, so a new DRConv2d computes exactly the plain conv W
    (and `weight` has the key and shape of the replaced conv: ImageNet-pretrained ResNet conv2 weights load into
    it); regions diverge from the first step on. The guide conv's own parameters are C_in*m*k*k + m (18K at 256,
    m=8) in both forms.
"""
import torch
from mmengine.model import constant_init, kaiming_init
from mmengine.registry import MODELS
from torch import nn

from ...ops.region_conv import region_conv
from ..utils import check_choice, check_input

GENERATORS = ('modulated', 'full')


def _pair(value, name, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ValueError(f'DRConv2d: {name} must be an int >= {minimum} or a pair of them, got {value!r}')
    return pair


@MODELS.register_module()
class DRConv2d(nn.Module):
    """Dynamic Region-Aware Convolution, with the signature of a conv type (mmcv's ``build_conv_layer``, ResNet's
    ``dcn=dict(type='DRConv2d', region_num=8)``).

    Args:
        in_channels (int), out_channels (int), kernel_size, stride, padding, dilation: as ``nn.Conv2d``.
        groups (int): must be 1 (region kernels are dense).
        bias (bool): a learned per-output-channel bias shared by the regions.
        region_num (int): m, the number of regions (>= 1).
        generator (str): 'modulated' (default, ~the parameters of a plain conv) or 'full' (the m^2*C_in*C_out form
            of the official code); see the module docstring.

    After each forward, ``last_mask`` holds the guided mask (B, H_out, W_out), int64, detached.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=False, region_num=8, generator='modulated'):
        super().__init__()
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('region_num', region_num)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'DRConv2d: {name} must be an int >= 1, got {value!r}')
        if groups != 1:
            raise ValueError(f'DRConv2d: groups must be 1 (region kernels are dense convolutions), got {groups!r}')
        check_choice('DRConv2d', 'generator', generator, GENERATORS)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, 'kernel_size', 1)
        self.stride = _pair(stride, 'stride', 1)
        self.padding = _pair(padding, 'padding', 0)
        self.dilation = _pair(dilation, 'dilation', 1)
        self.groups = 1
        self.region_num = region_num
        self.generator = generator
        m, (kh, kw) = region_num, self.kernel_size
        # The guided feature lies on the output grid: same geometry as the main convolution.
        self.conv_guide = nn.Conv2d(in_channels, m, self.kernel_size, self.stride, self.padding, self.dilation)
        hidden = m * m  # the official code's width: m hidden units per region
        if generator == 'modulated':
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
            generated = m * out_channels
        else:
            self.register_parameter('weight', None)
            generated = m * out_channels * in_channels
        self.filter_generator = nn.Sequential(
            nn.AdaptiveAvgPool2d(self.kernel_size),
            nn.Conv2d(in_channels, hidden, 1),
            nn.Sigmoid(),
            nn.Conv2d(hidden, generated, 1, groups=m))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.last_mask = None
        self.init_weights()

    def init_weights(self):
        # Also called by mmengine after a parent's init_cfg (e.g. ResNet's Kaiming for every Conv2d), so the
        # 'modulated' DRConv still starts as its plain convolution; a Pretrained init_cfg is applied after this.
        last = self.filter_generator[3]
        if self.weight is not None:
            kaiming_init(self, mode='fan_out', nonlinearity='relu', bias=0, distribution='normal')
            constant_init(last, 0)
        else:
            # Generated kernels at the scale Kaiming (fan_out) gives a plain conv: each output sums m sigmoid
            # units of mean square ~1/4.
            kh, kw = self.kernel_size
            target = (2.0 / (self.out_channels * kh * kw))**0.5
            nn.init.normal_(last.weight, std=target / (0.5 * self.region_num**0.5))
            nn.init.zeros_(last.bias)
            if self.bias is not None:
                nn.init.zeros_(self.bias)

    def generate_kernels(self, x):
        """The m kernels of every sample, (B, m, C_out, C_in, kh, kw)."""
        B = x.shape[0]
        m, (kh, kw) = self.region_num, self.kernel_size
        generated = self.filter_generator(x)  # (B, m * C_out [* C_in], kh, kw), region-major (groups=m)
        if self.weight is None:
            return generated.view(B, m, self.out_channels, self.in_channels, kh, kw)
        modulation = generated.view(B, m, self.out_channels, 1, kh, kw)
        return self.weight * (1 + modulation)

    def forward(self, x):
        check_input('DRConv2d', x, self.in_channels)
        guide = self.conv_guide(x)  # (B, m, H_out, W_out)
        mask = guide.argmax(dim=1)
        self.last_mask = mask.detach()
        kernels = self.generate_kernels(x).to(x.dtype)
        # The soft map F^ = softmax(F) only carries the surrogate gradient; the forward uses the hard mask.
        soft = guide.softmax(dim=1) if guide.requires_grad else None
        out = region_conv(x, kernels, mask, self.stride, self.padding, self.dilation, guide=soft)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype)
        return out

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, region_num={self.region_num}, '
                f'generator={self.generator!r}, bias={self.bias is not None}')
