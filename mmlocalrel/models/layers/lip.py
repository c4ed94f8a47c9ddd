"""LIP: Local Importance-based Pooling (Gao, Wang, Wu; ICCV 2019).

``LIP2d`` pools every window with weights ``exp(logit)``, the logits coming from a small fully convolutional
"logit module" (built from ``logit_cfg``). The paper's logit modules end in an affine InstanceNorm and an amplified
sigmoid ``coeff * sigmoid`` (coeff 12), so logits lie in (0, coeff):

* ``LIPProjectionLogit``: 1x1 conv -> IN -> coeff*sigmoid.
* ``LIPBottleneckLogit``: 1x1 reduce -> IN -> ReLU -> 3x3 -> IN -> ReLU -> 1x1 expand -> IN -> coeff*sigmoid
  (the ``trunk`` up to the second ReLU, then a projection ``head``; LIP-ResNet shares one trunk between a block's
  two LIPs).
* ``LIPSimplifiedLogit``: 3x3 conv -> IN -> coeff*sigmoid (LIP-ResNet's stem).

As in the authors' code, the conv feeding the last IN starts at zero: the logits start constant and a new LIP is
average pooling (over the taps inside the image).
"""
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule, constant_init
from mmengine.registry import MODELS
from torch import nn

from ...ops.lip2d import check_geometry, lip2d
from ..utils import check_input

LOGIT_MODULES = ('LIPProjectionLogit', 'LIPBottleneckLogit', 'LIPSimplifiedLogit')
DEFAULT_NORM_CFG = dict(type='IN', affine=True)


def _check_channels(owner, **channels):
    for name, value in channels.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{owner}: {name} must be a positive int, got {value!r}')


def _check_coeff(owner, coeff):
    if not isinstance(coeff, (int, float)) or isinstance(coeff, bool) or not coeff > 0:
        raise ValueError(f'{owner}: coeff must be a number > 0, got {coeff!r}')


class AmplifiedSigmoid(nn.Module):
    """``coeff * sigmoid(x)``: logits in (0, coeff); the paper's gate (coeff 12)."""

    def __init__(self, coeff=12.0):
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x):
        return x.sigmoid().mul(self.coeff)

    def extra_repr(self):
        return f'coeff={self.coeff}'


class _LogitModule(BaseModule):
    """conv -> norm -> amplified sigmoid, the conv zero-initialised (so the logits start constant)."""

    def __init__(self, owner, in_channels, out_channels, kernel_size, coeff, norm_cfg, zero_init, init_cfg):
        super().__init__(init_cfg)
        out_channels = in_channels if out_channels is None else out_channels
        _check_channels(owner, in_channels=in_channels, out_channels=out_channels)
        _check_coeff(owner, coeff)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.zero_init = zero_init
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm_name, norm = build_norm_layer(norm_cfg, out_channels)
        self.add_module(self.norm_name, norm)
        self.gate = AmplifiedSigmoid(coeff)
        self._zero()

    @property
    def norm(self):
        return getattr(self, self.norm_name)

    def _zero(self):
        if self.zero_init:
            constant_init(self.conv, 0)

    def init_weights(self):
        # A backbone's init_cfg (e.g. Kaiming on every Conv2d) runs before its children's init_weights: restore zero.
        super().init_weights()
        self._zero()

    def forward(self, x):
        return self.gate(self.norm(self.conv(x)))


@MODELS.register_module()
class LIPProjectionLogit(_LogitModule):
    """Projection logit module: 1x1 conv -> affine InstanceNorm -> ``coeff * sigmoid``.

    Args:
        in_channels (int): channels of the module's input.
        out_channels (int, optional): channels of the logits (those of the pooled features); default in_channels.
        coeff (float): amplification of the sigmoid. Default 12 (the paper's).
        norm_cfg (dict): normalisation (mmcv ``build_norm_layer``). Default affine InstanceNorm.
        zero_init (bool): start the conv at zero, so the LIP starts as average pooling. Default True.
    """

    def __init__(self, in_channels, out_channels=None, coeff=12.0, norm_cfg=DEFAULT_NORM_CFG, zero_init=True,
                 init_cfg=None):
        super().__init__('LIPProjectionLogit', in_channels, out_channels, 1, coeff, norm_cfg, zero_init, init_cfg)


@MODELS.register_module()
class LIPSimplifiedLogit(_LogitModule):
    """Simplified logit module (LIP-ResNet's stem): 3x3 conv -> affine InstanceNorm -> ``coeff * sigmoid``.

    Args: as :class:`LIPProjectionLogit`.
    """

    def __init__(self, in_channels, out_channels=None, coeff=12.0, norm_cfg=DEFAULT_NORM_CFG, zero_init=True,
                 init_cfg=None):
        super().__init__('LIPSimplifiedLogit', in_channels, out_channels, 3, coeff, norm_cfg, zero_init, init_cfg)


def bottleneck_trunk(in_channels, mid_channels, norm_cfg=DEFAULT_NORM_CFG):
    """1x1 reduce -> IN -> ReLU -> 3x3 -> IN -> ReLU: the bottleneck logit module before its projection head."""
    return nn.Sequential(
        ConvModule(in_channels, mid_channels, 1, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU')),
        ConvModule(mid_channels, mid_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU')))


@MODELS.register_module()
class LIPBottleneckLogit(BaseModule):
    """Bottleneck logit module: 1x1 reduce -> IN -> ReLU -> 3x3 -> IN -> ReLU -> 1x1 expand -> IN -> ``coeff*sigmoid``.

    Args:
        in_channels (int): channels of the module's input.
        out_channels (int, optional): channels of the logits; default in_channels.
        mid_channels (int): bottleneck width. Default 128 (LIP-ResNet's).
        coeff, norm_cfg, zero_init: as :class:`LIPProjectionLogit` (zero_init applies to the expand conv).
    """

    def __init__(self, in_channels, out_channels=None, mid_channels=128, coeff=12.0, norm_cfg=DEFAULT_NORM_CFG,
                 zero_init=True, init_cfg=None):
        super().__init__(init_cfg)
        out_channels = in_channels if out_channels is None else out_channels
        _check_channels('LIPBottleneckLogit', in_channels=in_channels, out_channels=out_channels,
                        mid_channels=mid_channels)
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid_channels
        self.trunk = bottleneck_trunk(in_channels, mid_channels, norm_cfg)
        self.head = LIPProjectionLogit(mid_channels, out_channels, coeff, norm_cfg, zero_init)

    def forward(self, x):
        return self.head(self.trunk(x))


@MODELS.register_module()
class LIP2d(BaseModule):
    """LIP pooling: ``lip2d(x, logit_module(guide or x), kernel_size, stride, padding)``.

    Args:
        in_channels (int): channels of the pooled features (and of the logits).
        logit_cfg (dict): the logit module, a registered type (``LIPProjectionLogit``, ``LIPBottleneckLogit``,
            ``LIPSimplifiedLogit`` or one of your own) with its arguments. ``in_channels`` defaults to this
            layer's (set it when the logits come from another tensor, see ``forward``); ``out_channels`` is this
            layer's.
        kernel_size, stride, padding (int | tuple[int, int]): the pooling window, as ``F.avg_pool2d``
            (``padding <= kernel_size / 2``). Default 3, 2, 1 (the paper's).

    ``forward(x, guide=None)``: the logits are computed from ``guide`` when given (LIP-ResNet computes them from a
    block's input while it pools a feature map inside the block), from ``x`` otherwise.
    """

    def __init__(self, in_channels, logit_cfg=dict(type='LIPProjectionLogit'), kernel_size=3, stride=2, padding=1,
                 init_cfg=None):
        super().__init__(init_cfg)
        _check_channels('LIP2d', in_channels=in_channels)
        self.kernel_size, self.stride, self.padding = check_geometry('LIP2d', kernel_size, stride, padding)
        if not isinstance(logit_cfg, dict) or 'type' not in logit_cfg:
            raise ValueError(f'LIP2d: logit_cfg must be a dict with a type (one of {LOGIT_MODULES} or another '
                             f'registered module), got {logit_cfg!r}')
        logit_type = logit_cfg['type']
        if isinstance(logit_type, str) and MODELS.get(logit_type) is None:
            raise ValueError(f'LIP2d: logit_cfg type {logit_type!r} is not a registered module; '
                             f'LIP logit modules: {LOGIT_MODULES}')
        cfg = dict(logit_cfg)
        cfg.setdefault('in_channels', in_channels)
        if cfg.setdefault('out_channels', in_channels) != in_channels:
            raise ValueError(f'LIP2d: logit_cfg out_channels must equal in_channels={in_channels} (one logit per '
                             f'pooled element), got {cfg["out_channels"]}')
        self.in_channels = in_channels
        self.logit = MODELS.build(cfg)

    def forward(self, x, guide=None):
        check_input('LIP2d', x, self.in_channels)
        logit = self.logit(x if guide is None else guide)
        if logit.shape != x.shape:
            raise ValueError(f'LIP2d: the logit module returned shape {tuple(logit.shape)}, expected the pooled '
                             f"features' shape {tuple(x.shape)}")
        return lip2d(x, logit, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f'in_channels={self.in_channels}, kernel_size={self.kernel_size}, stride={self.stride}, ' \
               f'padding={self.padding}'
