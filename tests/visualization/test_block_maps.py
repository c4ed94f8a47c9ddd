"""The block map functions on small blocks: shapes, normalisation, agreement with what the block computes in its
forward, and dependence on the input."""
import numpy as np
import pytest
import torch
from torch import nn

from mmlocalrel.models.layers import GCBlock, LIP2d, LocalRelation2d, NonLocalBlock
from mmlocalrel.visualization import (ImageGeometry, capture_block_inputs, drconv_region_map, find_blocks,
                                      gc_context_map, lip_importance_map, lr_weight_patches, nl_attention_maps,
                                      overlay_heatmap, overlay_labels)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_gc_context_map_is_the_softmax_the_block_pools_with():
    block = GCBlock(8, ratio=0.25).eval()
    x = torch.randn(2, 8, 5, 6)
    maps = gc_context_map(block, x)
    assert maps.shape == (2, 5, 6)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(2))
    # the map is the weights of the block's own context: sum_n map_n x_n equals its spatial_pool
    context = torch.einsum('bhw,bchw->bc', maps, x)
    torch.testing.assert_close(context, block.spatial_pool(x).flatten(1))
    assert maps[0].std() > 0 and not torch.allclose(maps[0], maps[1])  # depends on the input


def test_gc_context_map_refuses_other_modules_and_shapes():
    with pytest.raises(TypeError, match='GCBlock'):
        gc_context_map(nn.Conv2d(8, 8, 1), torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        gc_context_map(GCBlock(8, 0.25), torch.randn(1, 8, 4))


def _full_attention(block, x):
    theta = block.theta(x).flatten(2)
    phi = block.phi(x).flatten(2)
    return (torch.bmm(theta.transpose(1, 2), phi) / block.inter_channels**0.5).softmax(-1)  # (B, N, Nk)


@pytest.mark.parametrize('sub_sample', [False, True])
def test_nl_attention_maps_are_the_rows_of_the_query_points(sub_sample):
    block = NonLocalBlock(8, mode='embedded_gaussian', sub_sample=sub_sample, std=0.5).eval()
    x = torch.randn(2, 8, 6, 7)
    points = [(0, 0), (2, 3), (5, 6)]
    maps = nl_attention_maps(block, x, points)
    keys = (3, 3) if sub_sample else (6, 7)
    assert maps.shape == (2, 3) + keys
    torch.testing.assert_close(maps.sum(dim=(2, 3)), torch.ones(2, 3))
    with torch.no_grad():
        full = _full_attention(block, x)
    for i, (y, x_) in enumerate(points):
        torch.testing.assert_close(maps[:, i].flatten(1), full[:, y * 7 + x_])
    assert not torch.allclose(maps[:, 0], maps[:, 1])  # each query has its own map
    with pytest.raises(ValueError, match=r'outside the 6 x 7 grid'):
        nl_attention_maps(block, x, [(6, 0)])


def test_lip_importance_map_is_exp_logit_normalised_and_follows_the_guide():
    block = LIP2d(8, logit_cfg=dict(type='LIPProjectionLogit', zero_init=False)).eval()
    x = torch.randn(2, 8, 6, 6)
    maps = lip_importance_map(block, x)
    assert maps.shape == (2, 6, 6)
    with torch.no_grad():
        expected = block.logit(x).exp().mean(1)
    torch.testing.assert_close(maps, expected / expected.flatten(1).amax(1).view(-1, 1, 1))
    torch.testing.assert_close(maps.flatten(1).amax(1), torch.ones(2))
    assert (maps > 0).all() and maps[0].std() > 1e-3 and not torch.allclose(maps[0], maps[1])

    guided = LIP2d(8, logit_cfg=dict(type='LIPProjectionLogit', in_channels=4, zero_init=False)).eval()
    guide = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        expected = guided.logit(guide).exp().mean(1)
    torch.testing.assert_close(lip_importance_map(guided, x[:1], guide), expected / expected.max())


@pytest.mark.parametrize('stride', [1, 2])
def test_lr_weight_patches_reproduce_the_layer_aggregation(stride):
    # one relation group (channels_per_group = in_channels): the output before out_conv at a window centre is
    # exactly sum_taps patch * x, so the patch is checked against the layer's own (compiled) forward
    block = LocalRelation2d(8, 8, kernel_size=3, stride=stride, channels_per_group=8).eval()
    x = torch.randn(1, 8, 6, 7)
    points = [(0, 0), (2, 1)]
    patches = lr_weight_patches(block, x, points)
    assert patches.shape == (1, 2, 3, 3)
    torch.testing.assert_close(patches.sum(dim=(2, 3)), torch.ones(1, 2))
    assert (patches[0, 0, 0] == 0).all() and (patches[0, 0, :, 0] == 0).all()  # taps outside the image
    aggregated = {}
    block.out_conv.register_forward_hook(lambda m, args, out: aggregated.update(v=args[0]))
    with torch.no_grad():
        block(x)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i, (y, x_) in enumerate(points):
        cy, cx = y * stride, x_ * stride
        window = padded[0, :, cy:cy + 3, cx:cx + 3]  # centred on (cy, cx) of the unpadded input
        torch.testing.assert_close(aggregated['v'][0, :, y, x_], (window * patches[0, i]).sum((1, 2)))
    assert not torch.allclose(lr_weight_patches(block, torch.randn(1, 8, 6, 7), points), patches)


def test_drconv_region_map_reads_the_last_guided_mask():
    from mmlocalrel.models.layers import DRConv2d
    layer = DRConv2d(3, 6, kernel_size=3, stride=2, padding=1, region_num=4).eval()
    with pytest.raises(ValueError, match='last_mask'):
        drconv_region_map(layer)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        layer(x)
        labels = drconv_region_map(layer)
        expected = layer.conv_guide(x).argmax(1)
    assert labels.shape == (2, 4, 4) and labels.dtype == torch.int64
    assert torch.equal(labels, expected)
    assert 0 <= labels.min() and labels.max() < 4 and labels.unique().numel() > 1


def test_capture_keeps_inputs_and_lip_guides_then_removes_its_hooks():
    gc = GCBlock(8, 0.25)
    lip = LIP2d(8, logit_cfg=dict(type='LIPProjectionLogit', in_channels=4))
    model = nn.ModuleDict(dict(gc=gc, lip=lip))
    blocks = find_blocks(model)
    assert [(p, n) for p, n, _ in blocks] == [('gc', 'gc'), ('lip', 'lip')]
    x, guide = torch.randn(1, 8, 4, 4), torch.randn(1, 4, 4, 4)
    with capture_block_inputs(blocks) as capture:
        gc(x)
        lip(x, guide=guide)
    assert torch.equal(capture.captured['gc']['x'], x) and capture.captured['gc']['guide'] is None
    assert torch.equal(capture.captured['lip']['guide'], guide)
    assert not gc._forward_hooks and not lip._forward_hooks


def test_geometry_maps_image_points_and_grids_both_ways():
    # a 100 x 50 image resized to 128 x 64 and padded to 160 x 64; a stride-32 grid of 5 x 2
    geometry = ImageGeometry((100, 50), (128, 64), (160, 64))
    assert geometry.point_to_grid((0, 0), (5, 2)) == (0, 0)
    assert geometry.point_to_grid((99, 49), (5, 2)) == (3, 1)  # the padding row 4 holds no image pixel
    assert geometry.grid_to_point((3, 1), (5, 2)) == (38, 88)  # (x, y) of the cell centre: (37.5, 87.5) rounded
    grid = torch.zeros(5, 2)
    grid[4] = 1  # padding only: nothing of it reaches the image
    assert geometry.to_image(grid, nearest=True).shape == (100, 50)
    assert geometry.to_image(grid, nearest=True).max() == 0
    with pytest.raises(ValueError, match='outside the 100 x 50 image'):
        geometry.point_to_grid((100, 0), (5, 2))


def test_overlays_colour_the_image():
    image = np.full((10, 12, 3), 128, np.uint8)
    heat = np.tile(np.linspace(0, 1, 12, dtype=np.float32), (10, 1))
    out = overlay_heatmap(image, heat)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out[:, 0], out[:, -1])
    mask = np.zeros((10, 12), bool)
    mask[:, :6] = True
    assert np.array_equal(overlay_heatmap(image, heat, mask=mask)[:, 6:], image[:, 6:])
    labels = np.zeros((10, 12), np.int64)
    labels[:, 6:] = 1
    coloured = overlay_labels(image, labels)
    assert not np.array_equal(coloured[:, 0], coloured[:, -1])
    with pytest.raises(ValueError, match='differs'):
        overlay_heatmap(image, heat[:5])
