import itertools

import pytest
import torch
from mmcv.cnn import ContextBlock, build_plugin_layer
from mmdet.models.backbones import ResNet

from mmlocalrel.models.layers import GCBlock

COMBOS = list(itertools.product(('att', 'avg'), (('channel_add', ), ('channel_mul', ), ('channel_add', 'channel_mul'))))


def _randomise(module):
    # mmcv zero-initialises the last transform conv, which would make every block the identity: randomise all.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module


@pytest.mark.parametrize('pooling,fusions', COMBOS)
def test_matches_mmcv_context_block(pooling, fusions):
    ref = _randomise(ContextBlock(32, 1 / 4, pooling_type=pooling, fusion_types=fusions)).eval()
    ours = GCBlock(32, 1 / 4, pooling_type=pooling, fusion_types=fusions).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert set(ours.state_dict()) == set(ref.state_dict())
    x = torch.randn(2, 32, 9, 7)
    out, expected = ours(x), ref(x)
    assert (expected - x).abs().max() > 1e-2  # the block does something, so equality is meaningful
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('pooling,fusions', COMBOS)
def test_3d_and_5d_inputs_pool_over_all_positions(pooling, fusions):
    ref = _randomise(ContextBlock(16, 1 / 4, pooling_type=pooling, fusion_types=fusions)).eval()
    ours = GCBlock(16, 1 / 4, pooling_type=pooling, fusion_types=fusions).eval()
    ours.load_state_dict(ref.state_dict())
    seq = torch.randn(2, 16, 11)
    torch.testing.assert_close(ours(seq), ref(seq.unsqueeze(-1)).squeeze(-1), atol=1e-5, rtol=1e-5)
    video = torch.randn(2, 16, 3, 5, 4)
    expected = ref(video.reshape(2, 16, 3 * 5, 4)).reshape(video.shape)
    torch.testing.assert_close(ours(video), expected, atol=1e-5, rtol=1e-5)


def test_initialisation_matches_mmcv():
    block = GCBlock(16, 1 / 4, fusion_types=('channel_add', 'channel_mul'))
    for transform in (block.channel_add_conv, block.channel_mul_conv):
        assert torch.count_nonzero(transform[-1].weight) == 0 and torch.count_nonzero(transform[-1].bias) == 0
    x = torch.randn(1, 16, 4, 4)
    torch.testing.assert_close(block(x), x * 0.5)  # add -> +0, mul -> sigmoid(0) = 0.5


def test_zero_start_survives_the_backbone_initialisation():
    plugin = dict(cfg=dict(type='GCBlock', ratio=1 / 4), stages=(False, False, False, True), position='after_conv3')
    backbone = ResNet(depth=50, base_channels=16, plugins=[plugin])
    backbone.init_weights()  # Kaiming over every Conv2d, then the children's own init_weights
    blocks = [m for m in backbone.modules() if isinstance(m, GCBlock)]
    assert len(blocks) == 3
    for block in blocks:
        assert torch.count_nonzero(block.channel_add_conv[-1].weight) == 0
        assert torch.count_nonzero(block.conv_mask.weight) > 0


def test_context_attention_is_a_softmax_over_positions():
    block = _randomise(GCBlock(8, 1 / 2))
    attn = block.context_attention(torch.randn(3, 8, 5, 6))
    assert attn.shape == (3, 30)
    torch.testing.assert_close(attn.sum(1), torch.ones(3))
    with pytest.raises(RuntimeError, match="pooling_type='att'"):
        GCBlock(8, 1 / 2, pooling_type='avg').context_attention(torch.randn(1, 8, 2, 2))


def test_gradients_flow_to_every_parameter():
    block = _randomise(GCBlock(8, 1 / 2, fusion_types=('channel_add', 'channel_mul')))
    block(torch.randn(2, 8, 5, 5)).pow(2).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('kwargs,match', [
    (dict(pooling_type='max'), r"pooling_type must be one of \('att', 'avg'\)"),
    (dict(fusion_types=('channel_concat', )), r"fusion_types must be one of \('channel_add', 'channel_mul'\)"),
    (dict(fusion_types=()), 'fusion_types must be a non-empty'),
    (dict(fusion_types='channel_add'), 'fusion_types must be a non-empty list/tuple'),
    (dict(ratio=0), 'ratio must be > 0'),
    (dict(ratio=-0.5), 'ratio must be > 0'),
    (dict(ratio=1 / 64), r'gives int\(16 \* 0.015625\) = 0 planes'),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(in_channels=16, ratio=1 / 4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        GCBlock(**args)


def test_bad_input_says_what_was_expected():
    block = GCBlock(16, 1 / 4)
    with pytest.raises(ValueError, match=r'expected 16 input channels .* got shape \(2, 8, 4, 4\)'):
        block(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r'expected a 3-D .* got shape \(2, 16\)'):
        block(torch.randn(2, 16))


def test_plugin_in_resnet_loads_a_context_block_checkpoint():
    def resnet(block_type):
        plugin = dict(cfg=dict(type=block_type, ratio=1 / 16), stages=(False, True, True, True), position='after_conv3')
        return ResNet(depth=50, base_channels=16, plugins=[plugin])

    ref, ours = _randomise(resnet('ContextBlock')), resnet('GCBlock')
    ref.eval(), ours.eval()  # (mmdet's ResNet.train() returns None, so no chaining)
    ours.load_state_dict(ref.state_dict(), strict=True)  # mmdet's GCNet model-zoo keys load as they are
    assert sum(isinstance(m, GCBlock) for m in ours.modules()) == 4 + 6 + 3
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(ours(x), ref(x)):
        torch.testing.assert_close(a, b, atol=1e-4 * b.abs().max().item(), rtol=1e-4)


def test_build_plugin_layer_names_it():
    name, layer = build_plugin_layer(dict(type='GCBlock', ratio=1 / 4), in_channels=8, postfix='_1')
    assert name == 'context_block_1' and isinstance(layer, GCBlock)
