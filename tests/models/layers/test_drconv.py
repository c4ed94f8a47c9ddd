"""DRConv2d: the layer (guided mask, filter generator, surrogate gradient), as a conv type in mmdet's ResNet."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS

import mmlocalrel  # noqa: F401  (registers DRConv2d)
from mmlocalrel.models.layers import DRConv2d
from mmlocalrel.ops import has_kernel


def randomise_generator(layer, seed=0):
    """Non-zero modulations, so that the regions' kernels differ (a new 'modulated' layer starts as a plain conv)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        last = layer.filter_generator[3]
        last.weight.copy_(torch.randn(last.weight.shape, generator=gen) * 0.5)
        last.bias.copy_(torch.randn(last.bias.shape, generator=gen) * 0.5)
    return layer


def test_build_conv_layer_with_bottleneck_arguments():
    layer = build_conv_layer(dict(type='DRConv2d', region_num=4), 8, 6, kernel_size=3, stride=2, padding=1,
                             dilation=1, bias=False)
    assert isinstance(layer, DRConv2d) and layer.region_num == 4 and layer.bias is None
    x = torch.randn(2, 8, 11, 9)
    out = layer(x)
    assert out.shape == F.conv2d(x, torch.zeros(6, 8, 3, 3), stride=2, padding=1).shape
    assert layer.last_mask.shape == (2, 6, 5) and layer.last_mask.dtype == torch.long
    assert MODELS.get('DRConv2d') is DRConv2d


def test_new_modulated_layer_is_its_plain_convolution():
    layer = DRConv2d(5, 7, 3, stride=2, padding=2, dilation=2, bias=True, region_num=4)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 5, 13, 10)
    expected = F.conv2d(x, layer.weight, layer.bias, 2, 2, 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('generator', ['modulated', 'full'])
def test_forward_is_region_conv_of_generated_kernels(generator):
    torch.manual_seed(0)
    layer = DRConv2d(4, 6, 3, stride=1, padding=1, region_num=3, generator=generator, bias=True)
    if generator == 'modulated':
        randomise_generator(layer)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 9, 7)
    out = layer(x)
    mask = layer.conv_guide(x).argmax(1)
    assert torch.equal(layer.last_mask, mask)
    kernels = layer.generate_kernels(x)
    assert kernels.shape == (2, 3, 6, 4, 3, 3)
    expected = torch.zeros_like(out)
    for b in range(2):
        for t in range(3):
            y = F.conv2d(x[b:b + 1], kernels[b, t], layer.bias, 1, 1)[0]
            expected[b] += y * (mask[b] == t)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_last_mask_feeds_the_region_map_of_the_visualisation():
    from mmlocalrel.visualization import drconv_region_map
    layer = DRConv2d(3, 4, 3, stride=2, padding=1, region_num=4)
    layer(torch.randn(2, 3, 8, 8))
    labels = drconv_region_map(layer)
    assert torch.equal(labels, layer.last_mask) and labels.shape == (2, 4, 4)
    assert not labels.requires_grad and labels.unique().numel() > 1


def test_regions_get_distinct_input_dependent_kernels():
    layer = randomise_generator(DRConv2d(4, 4, 3, padding=1, region_num=4))
    k1 = layer.generate_kernels(torch.randn(1, 4, 8, 8))
    k2 = layer.generate_kernels(torch.randn(1, 4, 8, 8) * 3 + 1)
    assert (k1[0, 0] - k1[0, 1]).abs().max() > 1e-3  # regions differ
    assert (k1 - k2).abs().max() > 1e-3  # samples differ


@pytest.mark.parametrize('generator', ['modulated', 'full'])
def test_gradients_match_reference_and_reach_the_guide(generator, monkeypatch):
    """Whole layer, compiled op vs the pure-PyTorch reference: every parameter's gradient agrees, the guide conv's
    (only the softmax surrogate feeds it) included and non-zero."""
    assert has_kernel('region_conv_forward', 'cpu')
    torch.manual_seed(0)
    layer = DRConv2d(4, 5, 3, stride=2, padding=1, region_num=4, generator=generator, bias=True).double()
    randomise_generator(layer)
    x = torch.randn(2, 4, 9, 11, dtype=torch.float64)

    def grads(mode):
        monkeypatch.setenv('MMLOCALREL_OPS', mode)
        layer.zero_grad()
        xx = x.clone().requires_grad_()
        out = layer(xx)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        return out.detach(), xx.grad, {n: p.grad.clone() for n, p in layer.named_parameters()}

    out_k, gx_k, gp_k = grads('ext')
    out_r, gx_r, gp_r = grads('reference')
    torch.testing.assert_close(out_k, out_r)
    torch.testing.assert_close(gx_k, gx_r)
    for name in gp_r:
        torch.testing.assert_close(gp_k[name], gp_r[name], msg=lambda s: f'{name}: {s}')
        assert gp_k[name].abs().max() > 0, f'{name} got no gradient'


def test_surrogate_gradient_of_the_guide_conv():
    """dL/dF = softmax'(F)^T dL/dF^, dL/dF^_t(p) = <dL/dY(p), Y_t(p)>, computed here by hand."""
    torch.manual_seed(1)
    layer = randomise_generator(DRConv2d(3, 4, 3, padding=1, region_num=3)).double()
    x = torch.randn(1, 3, 6, 7, dtype=torch.float64)
    out = layer(x)
    grad = torch.randn_like(out)
    out.backward(grad)
    with torch.no_grad():
        guide = layer.conv_guide(x)
        kernels = layer.generate_kernels(x)
        y = torch.stack([F.conv2d(x, kernels[0, t], padding=1)[0] for t in range(3)])  # (m, Co, H, W)
        g_soft = (y * grad[0]).sum(1, keepdim=True).transpose(0, 1)  # (1, m, H, W)
        s = guide.softmax(1)
        g_guide = s * (g_soft - (s * g_soft).sum(1, keepdim=True))
    expected = torch.autograd.grad(layer.conv_guide(x), layer.conv_guide.weight, g_guide)[0]
    torch.testing.assert_close(layer.conv_guide.weight.grad, expected)


def test_parameter_counts():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    modulated = DRConv2d(256, 256, 3, padding=1, region_num=8)
    full = DRConv2d(256, 256, 3, padding=1, region_num=8, generator='full')
    # pool -> 1x1 (256 -> 64) -> sigmoid -> grouped 1x1 (64 -> 8*256, groups 8), plus the base 3x3 weight
    assert count(modulated.filter_generator) == 256 * 64 + 64 + 8 * 256 * 8 + 8 * 256
    assert count(modulated) - count(modulated.conv_guide) == 589_824 + 34_880
    # the official code's form: grouped 1x1 (64 -> 8*256*256) alone is m^2 * C_in * C_out weights
    assert full.filter_generator[3].weight.numel() == 8**2 * 256 * 256 == 4_194_304
    assert count(full.conv_guide) == count(modulated.conv_guide) == 256 * 8 * 9 + 8


def test_eval_no_grad_and_single_region():
    layer = DRConv2d(4, 4, 3, padding=1, region_num=1).eval()
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        out = layer(x)
    assert (layer.last_mask == 0).all()
    torch.testing.assert_close(out, F.conv2d(x, layer.weight, None, 1, 1), rtol=1e-5, atol=1e-5)


def test_bad_arguments_and_input():
    with pytest.raises(ValueError, match='region_num must be an int >= 1'):
        DRConv2d(4, 4, 3, region_num=0)
    with pytest.raises(ValueError, match='groups must be 1'):
        DRConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="generator must be one of \\('modulated', 'full'\\)"):
        DRConv2d(4, 4, 3, generator='dense')
    with pytest.raises(ValueError, match='in_channels must be'):
        DRConv2d(0, 4, 3)
    with pytest.raises(ValueError, match='stride must be'):
        DRConv2d(4, 4, 3, stride=0)
    layer = DRConv2d(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match='expected 4 input channels'):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r'expected a 4-D \(B, C, H, W\) input'):
        layer(torch.randn(4, 8, 8))


def test_in_mmdet_resnet_stages_c3_to_c5():
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    narrow = dict(depth=50, stem_channels=16, base_channels=16)  # ResNet-50's structure at a quarter of its width
    backbone = ResNet(**narrow, dcn=dict(type='DRConv2d', region_num=8), stage_with_dcn=(False, True, True, True),
                      init_cfg=dict(type='Kaiming', layer='Conv2d'))
    backbone.init_weights()
    stages = [backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4]
    assert not any(isinstance(m, DRConv2d) for m in stages[0].modules())
    drconvs = [blk.conv2 for stage in stages[1:] for blk in stage]
    assert len(drconvs) == 4 + 6 + 3 and all(isinstance(m, DRConv2d) for m in drconvs)
    assert drconvs[0].stride == (2, 2) and drconvs[0].region_num == 8
    # DRConv2d.init_weights ran after the parent's Kaiming: new DRConvs compute their plain convolution
    assert all(m.filter_generator[3].weight.abs().max() == 0 for m in drconvs)
    # a plain ResNet-50's conv2 weights (e.g. ImageNet-pretrained) load into DRConv2d.weight
    plain = ResNet(**narrow).state_dict()
    missing, unexpected = backbone.load_state_dict(plain, strict=False)
    assert not unexpected and all('conv_guide' in k or 'filter_generator' in k for k in missing)
    torch.testing.assert_close(backbone.layer3[0].conv2.weight, plain['layer3.0.conv2.weight'])
    backbone.train()
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    sum(o.mean() for o in outs).backward()
    assert drconvs[-1].filter_generator[3].weight.grad.abs().max() > 0
    assert drconvs[-1].last_mask.shape == (1, 2, 2)
