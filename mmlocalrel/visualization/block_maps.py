"""What each block computes internally, as maps on its input's grid (the figures of the GCNet, Non-local, DRConv, LIP
and Local Relation papers).

One small function per block type, each taking the block and the input it saw (captured with a forward hook, see
``capture_block_inputs``) and returning tensors on the feature grid; ``render`` draws them over an image.
"""
import torch

from ..models.layers.gc_block import GCBlock
from ..models.layers.lip import LIP2d
from ..models.layers.local_relation import LocalRelation2d
from ..models.layers.non_local import NonLocalBlock
from ..ops.local_relation import local_relation_weights_reference


@torch.no_grad()
def gc_context_map(block, x):
    """GCBlock's context attention, the softmax over positions: (B, H, W), each map sums to 1."""
    if not isinstance(block, GCBlock):
        raise TypeError(f'gc_context_map: expected a GCBlock, got {type(block).__name__}')
    if x.dim() != 4:
        raise ValueError(f'gc_context_map: expected the block input (B, C, H, W), got shape {tuple(x.shape)}')
    return block.context_attention(x).view(x.shape[0], *x.shape[2:])


def _flat_points(points, height, width, owner):
    """(y, x) points on an H x W grid -> flat row-major indices, checked."""
    flat = []
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f'{owner}: point (y={y}, x={x}) lies outside the {height} x {width} grid')
        flat.append(y * width + x)
    return flat


@torch.no_grad()
def nl_attention_maps(block, x, points):
    """NonLocalBlock's attention of chosen query points over all key positions: (B, P, Hk, Wk) (the key grid is
    pooled under sub_sample). Softmax modes' maps sum to 1.

    points: (y, x) positions on the input's H x W grid.
    """
    if not isinstance(block, NonLocalBlock) or block.dim != 2:
        raise TypeError(f'nl_attention_maps: expected a 2-D NonLocalBlock, got {block!r:.80}')
    if x.dim() != 4:
        raise ValueError(f'nl_attention_maps: expected the block input (B, C, H, W), got shape {tuple(x.shape)}')
    index = _flat_points(points, x.shape[2], x.shape[3], 'nl_attention_maps')
    attention = block.attention_map(x, index)  # (B, P, Nk)
    return attention.view(x.shape[0], len(index), *block.key_shape(x.shape[2:]))


@torch.no_grad()
def lip_importance_map(block, x, guide=None):
    """LIP2d's importance exp(logit), averaged over channels and divided by its maximum: (B, H, W) in (0, 1].

    x, guide: the block's inputs (the logits come from ``guide`` when the block was given one, as in LIP-ResNet).
    """
    if not isinstance(block, LIP2d):
        raise TypeError(f'lip_importance_map: expected a LIP2d, got {type(block).__name__}')
    logit = block.logit(x if guide is None else guide)
    importance = logit.float().exp().mean(dim=1)  # (B, H, W)
    return importance / importance.flatten(1).amax(dim=1).view(-1, 1, 1)


@torch.no_grad()
def lr_weight_patches(block, x, points):
    """LocalRelation2d's aggregation weights around chosen pixels, averaged over the relation groups: (B, P, k, k),
    taps outside the image are 0, each patch sums to 1.

    points: (y, x) positions on the output grid (the input's grid when stride is 1); the window is centred on the
    input pixel (y * stride, x * stride) and its taps are ``dilation`` apart.
    """
    if not isinstance(block, LocalRelation2d):
        raise TypeError(f'lr_weight_patches: expected a LocalRelation2d, got {type(block).__name__}')
    if x.dim() != 4:
        raise ValueError(f'lr_weight_patches: expected the block input (B, C, H, W), got shape {tuple(x.shape)}')
    s, k = block.stride, block.kernel_size
    key = block.key_conv(x)
    query = block.query_conv(x[:, :, ::s, ::s])
    weights = local_relation_weights_reference(query, key, block.geometric_prior(), k, s, block.dilation,
                                               block.composability)  # (B, G, k*k, Ho, Wo)
    index = _flat_points(points, weights.shape[3], weights.shape[4], 'lr_weight_patches')
    weights = weights.flatten(3)[:, :, :, index].mean(dim=1)  # (B, k*k, P)
    return weights.transpose(1, 2).reshape(x.shape[0], len(index), k, k)


@torch.no_grad()
def drconv_region_map(block):
    """DRConv2d's guided mask of its last forward: (B, H_out, W_out) region labels in [0, region_num)."""
    mask = getattr(block, 'last_mask', None)
    if not hasattr(block, 'region_num') or mask is None:
        raise ValueError(f'drconv_region_map: {type(block).__name__} holds no guided mask (last_mask); run a '
                         f'forward through the DRConv2d first')
    return mask


# ---- capture -----------------------------------------------------------------------------------------------------
# Block types by the prefix of their output files.
BLOCK_TYPES = {'gc': 'GCBlock', 'nl': 'NonLocalBlock', 'drconv': 'DRConv2d', 'lip': 'LIP2d', 'lr': 'LocalRelation2d'}


def find_blocks(model):
    """(prefix, name, module) of every block instance of the types above, in module order."""
    by_class = {cls: prefix for prefix, cls in BLOCK_TYPES.items()}
    found = []
    for name, module in model.named_modules():
        prefix = by_class.get(type(module).__name__)
        if prefix is not None:
            found.append((prefix, name, module))
    return found


class capture_block_inputs:
    """Context manager: forward hooks that keep each block's input (and LIP2d's ``guide``) of the last forward.

    ``captured[name]`` is a dict with 'x' (and 'guide' for LIP2d); detached tensors.
    """

    def __init__(self, blocks):
        self.blocks = blocks
        self.captured = {}
        self._handles = []

    def __enter__(self):
        for _, name, module in self.blocks:
            def hook(module, args, kwargs, output, name=name):
                x = args[0] if args else kwargs['x']
                guide = args[1] if len(args) > 1 else kwargs.get('guide')
                self.captured[name] = dict(x=x.detach(), guide=None if guide is None else guide.detach())
            self._handles.append(module.register_forward_hook(hook, with_kwargs=True))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
