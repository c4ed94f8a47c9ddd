"""Non-local block (Wang et al., Non-local Neural Networks, CVPR 2018): y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j),
z = x + W y.

A drop-in for mmcv's ``NonLocal1d/2d/3d``: same arguments, same modules and state-dict keys (``g``, ``theta``,
``phi``, ``conv_out``, ``concat_project``; ``g.0``/``phi.0`` under ``sub_sample``), same initialisation, same outputs.
What differs is memory: mmcv builds the N x N pairwise matrix (N = number of positions; 268 MB per image for a 64x128
map in fp32, and (2C' x N x N) floats for 'concatenation'). Here no mode materialises it:

- 'embedded_gaussian', 'gaussian': ``scaled_dot_product_attention`` on 4-D (B, 1, N, C) inputs, so the fused
  flash / memory-efficient kernels are eligible (on CPU, torch's flash kernel runs, forward and backward; 'gaussian'
  pads g to theta's width with zeros because those kernels need equal query and value widths).
- 'dot_product': theta_i . sum_j phi_j g_j^T / N, computed right to left, with a C' x C' intermediate.
- 'concatenation': f(x_i, x_j) = ReLU(w . [theta_i; phi_j]) = ReLU(w_theta . theta_i + w_phi . phi_j), a scalar per
  pair, evaluated over chunks of queries, forward and backward, so at most (chunk x N) pairs exist at once.
"""
import math

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import constant_init, normal_init
from mmengine.registry import MODELS
from torch import nn
from torch.autograd.function import once_differentiable

from ..utils import check_choice, check_input

MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
DIMS = (1, 2, 3)
# mmcv's sub-sampling pools: video keeps its time axis (1 x 2 x 2), as in the paper.
_POOLS = {1: lambda: nn.MaxPool1d(kernel_size=2), 2: lambda: nn.MaxPool2d(kernel_size=(2, 2)),
          3: lambda: nn.MaxPool3d(kernel_size=(1, 2, 2))}
_POOL_KERNELS = {1: (2, ), 2: (2, 2), 3: (1, 2, 2)}
# Pairwise values held at once by the chunked 'concatenation' (per chunk, batch included): 16 MiB in fp32.
_CONCAT_CHUNK_ELEMENTS = 1 << 22


class _ConcatenationAttention(torch.autograd.Function):
    """y[:, :, i] = sum_j ReLU(a_i + b_j) / Nk * g[:, :, j], over chunks of queries i (forward and backward).

    a: (B, N) query terms, b: (B, Nk) key terms, g: (B, C', Nk); returns (B, C', N).
    """

    @staticmethod
    def forward(ctx, a, b, g, chunk):
        ctx.save_for_backward(a, b, g)
        ctx.chunk = chunk
        num_keys = b.shape[1]
        y = g.new_empty(g.shape[0], g.shape[1], a.shape[1])
        for start in range(0, a.shape[1], chunk):
            stop = min(start + chunk, a.shape[1])
            pairwise = (a[:, start:stop, None] + b[:, None, :]).relu_().div_(num_keys)  # (B, q, Nk)
            y[:, :, start:stop] = torch.bmm(g, pairwise.transpose(1, 2))
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        a, b, g = ctx.saved_tensors
        chunk, num_keys = ctx.chunk, b.shape[1]
        grad_a = torch.empty_like(a)
        grad_b = torch.zeros_like(b)
        grad_g = torch.zeros_like(g)
        for start in range(0, a.shape[1], chunk):
            stop = min(start + chunk, a.shape[1])
            logits = a[:, start:stop, None] + b[:, None, :]  # (B, q, Nk), recomputed rather than stored
            grad_out = grad_y[:, :, start:stop]  # (B, C', q)
            grad_g.baddbmm_(grad_out, logits.clamp_min(0).div_(num_keys))
            grad_pair = torch.bmm(grad_out.transpose(1, 2), g)  # d loss / d pairwise, (B, q, Nk)
            grad_pair.mul_(logits > 0).div_(num_keys)
            grad_a[:, start:stop] = grad_pair.sum(2)
            grad_b += grad_pair.sum(1)
        return grad_a, grad_b, grad_g, None


@MODELS.register_module()
class NonLocalBlock(nn.Module):
    """Non-local block for sequences (``dim=1``), images (2) and videos (3).

    Args:
        in_channels (int): channels of the input.
        reduction (int): the embeddings theta, phi, g have ``in_channels // reduction`` channels (must be >= 1).
        use_scale (bool): 'embedded_gaussian' only: divide theta . phi by sqrt(inter_channels) (as mmcv; 'gaussian'
            is never scaled, as mmcv).
        conv_cfg (dict | None): conv layers of g, theta, phi, conv_out; ``None`` means ``Conv{dim}d``.
        norm_cfg (dict | None): norm after conv_out (e.g. ``dict(type='BN')``); its weight starts at zero.
        mode (str): f(x_i, x_j): 'gaussian', 'embedded_gaussian', 'dot_product' or 'concatenation'.
        sub_sample (bool): max-pool g and phi (2 x 2 on images, 1 x 2 x 2 on videos): 4x fewer keys.
        dim (int): spatial dims of the input, 1 (B, C, L), 2 (B, C, H, W) or 3 (B, C, T, H, W).
        zeros_init (bool): start conv_out (or its norm) at zero, so a new block is the identity (the paper's and
            mmcv's default).
        std (float): std of the normal init of the g / theta / phi convs (and of conv_out when not zeros_init).
        chunk_size (int | None): queries per chunk in 'concatenation'; ``None`` picks it so that a chunk holds at
            most 2**22 pairwise values.

    State dicts of mmcv's ``NonLocal{dim}d`` with the same arguments load as they are (and the other way round).
    """

    _abbr_ = 'nonlocal_block'

    def __init__(self, in_channels, *, reduction=2, use_scale=True, conv_cfg=None, norm_cfg=None,
                 mode='embedded_gaussian', sub_sample=False, dim=2, zeros_init=True, std=0.01, chunk_size=None):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'NonLocalBlock: in_channels must be a positive int, got {in_channels!r}')
        check_choice('NonLocalBlock', 'mode', mode, MODES)
        check_choice('NonLocalBlock', 'dim', dim, DIMS)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f'NonLocalBlock: reduction must be a positive int, got {reduction!r}')
        if in_channels // reduction < 1:
            raise ValueError(f'NonLocalBlock: reduction={reduction} gives {in_channels} // {reduction} = 0 embedding '
                             f'channels; reduction must be <= in_channels={in_channels}')
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f'NonLocalBlock: chunk_size must be None or a positive int, got {chunk_size!r}')
        if conv_cfg is None:
            conv_cfg = dict(type=f'Conv{dim}d')
        elif not isinstance(conv_cfg, dict):
            raise ValueError(f'NonLocalBlock: conv_cfg must be None or a dict, got {conv_cfg!r}')
        elif conv_cfg.get('type') in ('Conv1d', 'Conv2d', 'Conv3d') and conv_cfg['type'] != f'Conv{dim}d':
            raise ValueError(f"NonLocalBlock: conv_cfg type {conv_cfg['type']!r} does not match dim={dim}; "
                             f"use 'Conv{dim}d' (or conv_cfg=None)")
        self.in_channels = in_channels
        self.reduction = reduction
        self.inter_channels = in_channels // reduction
        self.use_scale = use_scale
        self.mode = mode
        self.sub_sample = sub_sample
        self.dim = dim
        self.chunk_size = chunk_size

        def embed(out_channels=self.inter_channels):
            return ConvModule(in_channels, out_channels, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)

        # Module layout (and so the state-dict keys) exactly as mmcv's _NonLocalNd / NonLocal{1,2,3}d.
        self.g = embed()
        self.conv_out = ConvModule(self.inter_channels, in_channels, kernel_size=1, conv_cfg=conv_cfg,
                                   norm_cfg=norm_cfg, act_cfg=None)
        if mode != 'gaussian':
            self.theta = embed()
            self.phi = embed()
        if mode == 'concatenation':
            # mmcv's projection is a Conv2d over the (2C', N, Nk) pair tensor whatever ``dim`` is; kept for the keys.
            self.concat_project = ConvModule(self.inter_channels * 2, 1, kernel_size=1, bias=False,
                                             act_cfg=dict(type='ReLU'))
        if sub_sample:
            self.g = nn.Sequential(self.g, _POOLS[dim]())
            self.phi = nn.Sequential(self.phi, _POOLS[dim]()) if mode != 'gaussian' else _POOLS[dim]()
        self.zeros_init = zeros_init
        self.std = std
        self.init_weights()

    def init_weights(self):
        # Named init_weights so that mmengine re-applies it after a backbone's init_cfg (e.g. ResNet's Kaiming on
        # every Conv2d) has run over the block: the block stays the identity at the start of training.
        convs = [self.g, self.theta, self.phi] if self.mode != 'gaussian' else [self.g]
        for module in convs:
            conv_module = module[0] if isinstance(module, nn.Sequential) else module
            normal_init(conv_module.conv, std=self.std)
        last = self.conv_out.norm if self.conv_out.with_norm else self.conv_out.conv
        if self.zeros_init:
            constant_init(last, 0)
        else:
            normal_init(last, std=self.std)

    # ---- embeddings --------------------------------------------------------------------------------------------
    def _embeddings(self, x):
        """theta (B, E, N), phi (B, E, Nk), g (B, C', Nk); E = in_channels for 'gaussian', inter_channels else."""
        g = self.g(x).flatten(2)
        if self.mode == 'gaussian':
            theta = x.flatten(2)
            phi = (self.phi(x) if self.sub_sample else x).flatten(2)
        else:
            theta = self.theta(x).flatten(2)
            phi = self.phi(x).flatten(2)
        return theta, phi, g

    def _scale(self):
        if self.mode == 'embedded_gaussian' and self.use_scale:
            return 1.0 / math.sqrt(self.inter_channels)
        return 1.0

    def _concat_terms(self, theta, phi):
        # w . [theta_i; phi_j] splits into a query term and a key term: the (2C', N, Nk) concatenation never exists.
        w = self.concat_project.conv.weight.view(2, self.inter_channels)
        a = torch.einsum('c,bcn->bn', w[0], theta)
        b = torch.einsum('c,bcn->bn', w[1], phi)
        return a, b

    # ---- y = sum_j f(x_i, x_j) g_j / C(x), (B, C', N) ------------------------------------------------------------
    def _softmax_attention(self, theta, phi, g):
        # (B, 1, N, E): 4-D, one head, channels last with stride 1 (the fused kernels' requirements; a strided
        # transpose silently sends SDPA to its math path, which builds the N x Nk matrix).
        width = theta.shape[1]
        q = theta.transpose(1, 2).contiguous().unsqueeze(1)
        k = phi.transpose(1, 2).contiguous().unsqueeze(1)
        v = g.transpose(1, 2).contiguous().unsqueeze(1)  # (B, 1, Nk, C')
        if v.shape[-1] != width:  # 'gaussian': fused kernels need value width == query width
            v = F.pad(v, (0, width - v.shape[-1]))
        y = F.scaled_dot_product_attention(q, k, v, scale=self._scale())
        return y[..., :g.shape[1]].squeeze(1).transpose(1, 2)

    def _dot_product(self, theta, phi, g):
        context = torch.bmm(phi, g.transpose(1, 2)).div_(phi.shape[2])  # (B, E, C') = sum_j phi_j g_j^T / Nk
        return torch.bmm(context.transpose(1, 2), theta)

    def _concatenation(self, theta, phi, g):
        a, b = self._concat_terms(theta, phi)
        chunk = self.chunk_size or max(1, _CONCAT_CHUNK_ELEMENTS // (b.shape[0] * b.shape[1]))
        return _ConcatenationAttention.apply(a, b, g, chunk)

    def forward(self, x):
        check_input('NonLocalBlock', x, self.in_channels, dims=(self.dim, ))
        theta, phi, g = self._embeddings(x)
        if self.mode in ('gaussian', 'embedded_gaussian'):
            y = self._softmax_attention(theta, phi, g)
        elif self.mode == 'dot_product':
            y = self._dot_product(theta, phi, g)
        else:
            y = self._concatenation(theta, phi, g)
        y = y.reshape(x.shape[0], self.inter_channels, *x.shape[2:])
        return x + self.conv_out(y)

    # ---- visualisation -----------------------------------------------------------------------------------------
    def key_shape(self, spatial_shape):
        """Spatial shape of the keys (phi, g) for an input of spatial shape ``spatial_shape`` (pooled if
        sub_sample): ``attention_map``'s last axis flattens this grid."""
        if not self.sub_sample:
            return tuple(spatial_shape)
        return tuple(s // k for s, k in zip(spatial_shape, _POOL_KERNELS[self.dim]))

    @torch.no_grad()
    def attention_map(self, x, query_index):
        """Pairwise weights f(x_i, x_j) / C(x) of chosen queries: (B, Nq, Nk), computed for those rows only.

        Args:
            x: the block's input, (B, C, *spatial).
            query_index: int, sequence of ints or 1-D LongTensor of flat query positions in [0, N), N =
                prod(spatial) (row-major: position (h, w) of an H x W map is h * W + w).

        Row i holds the weights query i gives to every key position (reshape the last axis to
        ``key_shape(x.shape[2:])`` to draw it). Softmax modes' rows sum to 1; 'dot_product' and 'concatenation'
        divide by the number of keys, as the paper and mmcv do.
        """
        check_input('NonLocalBlock', x, self.in_channels, dims=(self.dim, ))
        num_queries = math.prod(x.shape[2:])
        index = torch.as_tensor(query_index, dtype=torch.long, device=x.device).reshape(-1)
        if index.numel() == 0 or index.min() < 0 or index.max() >= num_queries:
            raise ValueError(f'NonLocalBlock.attention_map: query_index must hold flat positions in [0, {num_queries})'
                             f' for spatial shape {tuple(x.shape[2:])}, got {query_index!r}')
        theta, phi, _ = self._embeddings(x)
        theta = theta[:, :, index]  # (B, E, Nq)
        if self.mode == 'concatenation':
            a, b = self._concat_terms(theta, phi)
            return (a[:, :, None] + b[:, None, :]).relu_().div_(phi.shape[2])
        pairwise = torch.bmm(theta.transpose(1, 2), phi)  # (B, Nq, Nk)
        if self.mode == 'dot_product':
            return pairwise.div_(phi.shape[2])
        return pairwise.mul_(self._scale()).softmax(dim=-1)

    def extra_repr(self):
        return (f'mode={self.mode!r}, in_channels={self.in_channels}, inter_channels={self.inter_channels}, '
                f'dim={self.dim}, sub_sample={self.sub_sample}, use_scale={self.use_scale}')
