"""LocalRelation2d: the layer's computation, its conv-type use inside mmdet's ResNet, and argument checks."""
import pytest
import torch
from mmcv.cnn import build_conv_layer
from mmdet.models.backbones import ResNet
from mmengine.registry import MODELS

import mmlocalrel  # noqa: F401  (registers)
from mmlocalrel.models.layers import LocalRelation2d
from mmlocalrel.models.layers.local_relation import relative_positions
from mmlocalrel.ops.local_relation import local_relation_reference


def manual_forward(layer, x):
    """The paper's layer written out with the unfold reference op."""
    s = layer.stride
    query = layer.query_conv(x[:, :, ::s, ::s])
    key = layer.key_conv(x)
    pos = relative_positions(layer.kernel_size).unsqueeze(0)
    geo = layer.geo_prior[2](torch.relu(layer.geo_prior[0](pos))).view(layer.relation_groups, -1)
    out = local_relation_reference(query, key, x, geo, layer.kernel_size, s, layer.dilation, layer.composability)
    return layer.out_conv(out)


@pytest.mark.parametrize('stride,dilation,composability', [(1, 1, 'squared_diff'), (2, 1, 'abs_diff'),
                                                           (1, 2, 'dot'), (2, 2, 'squared_diff')])
def test_matches_manual_forward_and_backward(stride, dilation, composability):
    torch.manual_seed(0)
    layer = LocalRelation2d(16, 24, kernel_size=7, stride=stride, dilation=dilation, channels_per_group=4,
                            composability=composability)
    x = torch.randn(2, 16, 11, 10, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 24, (11 - 1) // stride + 1, (10 - 1) // stride + 1)
    ref = manual_forward(layer, x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    grad = torch.randn_like(out)
    params = [x] + list(layer.parameters())
    got = torch.autograd.grad(out, params, grad)
    want = torch.autograd.grad(ref, params, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_relative_positions_are_a_fixed_buffer():
    layer = LocalRelation2d(8, 8, kernel_size=3)
    expected = torch.tensor([[[-1., -1., -1.], [0., 0., 0.], [1., 1., 1.]],
                             [[-1., 0., 1.], [-1., 0., 1.], [-1., 0., 1.]]])
    assert torch.equal(layer.relative_position, expected)
    assert 'relative_position' not in dict(layer.named_parameters())
    assert 'relative_position' not in layer.state_dict()  # derived from k, not learned
    assert torch.equal(LocalRelation2d(8, 8, kernel_size=3).relative_position, expected)  # not random
    assert layer.geometric_prior().shape == (1, 9)


def test_geometric_prior_shapes_the_weights():
    # With query = key = 0 the appearance term vanishes and the weights are softmax(geo_prior): pushing one tap's
    # prior up must move the output towards that tap's value.
    layer = LocalRelation2d(8, 8, kernel_size=3, channels_per_group=8)
    for conv in (layer.query_conv, layer.key_conv):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    with torch.no_grad():
        layer.geo_prior[2].weight.zero_()
        layer.geo_prior[2].bias.fill_(0.)
        layer.out_conv.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
    x = torch.arange(25.).view(1, 1, 5, 5).repeat(1, 8, 1, 1)
    uniform = layer(x)
    torch.testing.assert_close(uniform[0, 0, 2, 2], x[0, 0, 1:4, 1:4].mean())  # uniform over the 9 taps
    with torch.no_grad():
        layer.geo_prior[2].bias.fill_(0.)
        # A prior that grows with dx (second position channel) favours the right neighbour.
        layer.geo_prior[0].weight.zero_()
        layer.geo_prior[0].bias.zero_()
        layer.geo_prior[0].weight[0, 1] = 1.
        layer.geo_prior[0].bias[0] = 1.
        layer.geo_prior[2].weight[0, 0] = 20.
    right = layer(x)
    torch.testing.assert_close(right[0, 0, 2, 2], x[0, 0, 1:4, 3].mean(), rtol=1e-3, atol=1e-3)


def test_builds_as_a_conv_type_with_relation_kernel_size():
    layer = build_conv_layer(dict(type='LocalRelation2d', relation_kernel_size=7), 16, 16, kernel_size=3, stride=2,
                             padding=1, dilation=1, bias=False)
    assert isinstance(layer, LocalRelation2d) and layer.kernel_size == 7 and layer.stride == 2
    assert layer(torch.randn(1, 16, 9, 9)).shape == (1, 16, 5, 5)
    assert MODELS.get('LocalRelation2d') is LocalRelation2d


def test_replaces_resnet_conv2_in_c3_c5():
    model = ResNet(depth=50, base_channels=16, dcn=dict(type='LocalRelation2d', relation_kernel_size=7),
                   stage_with_dcn=(False, True, True, True), out_indices=(0, 1, 2, 3), zero_init_residual=False)
    model.init_weights()
    assert not isinstance(model.layer1[0].conv2, LocalRelation2d)
    for layer in (model.layer2, model.layer3, model.layer4):
        for block in layer:
            assert isinstance(block.conv2, LocalRelation2d) and block.conv2.kernel_size == 7
    assert model.layer2[0].conv2.stride == 2
    # mmengine's init reaches the layer's own init_weights after the blanket Kaiming init of the backbone.
    q = model.layer3[0].conv2.query_conv.weight
    assert abs(q.std().item() - q.shape[1]**-0.5) < 0.3 * q.shape[1]**-0.5
    model.train()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    sum(o.sum() for o in outs).backward()
    assert model.layer4[0].conv2.key_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(in_channels=12, channels_per_group=8), r'in_channels \(12\) must be divisible by channels_per_group'),
    (dict(kernel_size=4), 'kernel_size must be odd'),
    (dict(relation_kernel_size=6), 'relation_kernel_size must be odd'),
    (dict(composability='cosine'), 'composability must be one of'),
    (dict(groups=2), 'groups must be 1'),
    (dict(padding=0, kernel_size=3), r'padding must be None or dilation \* \(kernel_size // 2\) = 1'),
    (dict(stride=0), 'stride and dilation must be >= 1'),
    (dict(channels_per_group=0), 'channels_per_group must be a positive int'),
])
def test_bad_arguments(kwargs, match):
    args = dict(in_channels=16, out_channels=16)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LocalRelation2d(**args)


def test_bad_input_says_what_was_expected():
    layer = LocalRelation2d(16, 16)
    with pytest.raises(ValueError, match=r'expected 16 input channels .* got shape \(1, 8, 5, 5\)'):
        layer(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match='expected a 4-D'):
        layer(torch.randn(16, 5, 5))


def test_cpu_bf16_autocast():
    # --amp on CPU trains under bf16 autocast: the 1x1 convs return bf16 whatever the input dtype; the op must get
    # one dtype and gradients must flow.
    layer = LocalRelation2d(16, 16, kernel_size=5, stride=2)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, 16, 9, 9, dtype=dtype, requires_grad=True)
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            out = layer(x)
        out.float().sum().backward()
        assert out.shape == (2, 16, 5, 5) and torch.isfinite(out.float()).all()
        assert torch.isfinite(x.grad.float()).all() and x.grad.abs().sum() > 0
