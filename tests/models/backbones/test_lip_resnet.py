import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import load_state_dict
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import mmlocalrel  # noqa: F401  (registers the modules)
from mmlocalrel.models.backbones.lip_resnet import LIPBottleneck, LIPResNet
from mmlocalrel.models.layers.lip import LIP2d, LIPSimplifiedLogit

FC_HEAD = 2048 * 1000 + 1000  # the paper counts the ImageNet classifier
SMALL = dict(base_channels=16, lip_width=16)  # functional tests: the same graph, 16x fewer weights


@pytest.mark.parametrize('depth,paper', [(50, 23.9e6), (101, 42.9e6)])
def test_parameter_count_matches_the_paper(depth, paper):
    model = MODELS.build(dict(type='LIPResNet', depth=depth))
    count = sum(p.numel() for p in model.parameters()) + FC_HEAD
    assert abs(count - paper) / paper < 0.02, count
    plain = sum(p.numel() for p in ResNet(depth).parameters()) + FC_HEAD
    assert abs(plain - paper) / paper > 0.02  # the check tells LIP-ResNet from a plain ResNet


def test_structure():
    model = LIPResNet(50)
    assert isinstance(model.maxpool, LIP2d) and isinstance(model.maxpool.logit, LIPSimplifiedLogit)
    lips = [m for m in model.modules() if isinstance(m, LIP2d)]
    assert len(lips) == 1 + 2 * 3  # stem + (residual, shortcut) in the first block of stages 2-4
    for i, layer in enumerate((model.layer1, model.layer2, model.layer3, model.layer4)):
        for j, block in enumerate(layer):
            assert isinstance(block, LIPBottleneck)
            assert block.conv1.stride == (1, 1) and block.conv2.stride == (1, 1)
            if i > 0 and j == 0:
                assert block.with_lip and block.conv2.kernel_size == (1, 1)
                assert block.lip.in_channels == block.planes
                assert block.downsample_lip.in_channels == block.inplanes
                assert block.downsample[0].stride == (1, 1) and block.downsample[0].kernel_size == (1, 1)
                assert isinstance(block.downsample[1], _BatchNorm)
                assert block.lip_trunk[0].conv.out_channels == 128
            else:
                assert not block.with_lip and block.conv2.kernel_size == (3, 3)
                assert not hasattr(block, 'lip')


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (1, 3)])
def test_output_shapes_match_resnet(out_indices):
    x = torch.randn(1, 3, 67, 45)  # odd sizes: every downsampling rounds as the stride-2 convs/max-pool of ResNet
    outs = LIPResNet(50, out_indices=out_indices, **SMALL)(x)
    want = ResNet(50, out_indices=out_indices, base_channels=16)(x)
    assert [o.shape for o in outs] == [w.shape for w in want]


def test_dilated_segmentation_variant():
    model = LIPResNet(50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), out_indices=(0, 1, 2, 3), **SMALL)
    assert sum(isinstance(m, LIP2d) for m in model.modules()) == 1 + 2
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[-1] for o in outs] == [8, 4, 4, 4]


def test_deep_stem_v1c_layout():
    # mmseg's ResNetV1c layout (deep stem); the stem's max-pool is LIP all the same
    model = LIPResNet(50, deep_stem=True, frozen_stages=0, out_indices=(0, ), **SMALL)
    assert isinstance(model.maxpool, LIP2d) and not any(p.requires_grad for p in model.maxpool.parameters())
    assert model(torch.randn(1, 3, 33, 33))[0].shape == (1, 64, 9, 9)


def test_frozen_stages_and_norm_eval():
    model = LIPResNet(50, frozen_stages=1, norm_eval=True, **SMALL)
    model.train()
    frozen = [model.conv1, model.norm1, model.maxpool, model.layer1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not m.training for m in frozen[1:])
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert model.layer2[0].lip.training


def test_init_weights():
    model = LIPResNet(50, **SMALL)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, LIP2d):  # the logit projections restart at zero after ResNet's Kaiming init
            assert torch.all(m.logit.conv.weight == 0)
    assert torch.all(model.layer2[0].norm3.weight == 0)  # zero_init_residual, as mmdet's ResNet
    assert model.layer2[0].lip_trunk[0].conv.weight.abs().sum() > 0


def test_training_step_reaches_lip_parameters():
    model = LIPResNet(50, out_indices=(3, ), norm_eval=False, **SMALL)
    model.init_weights()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.weight.fill_(1.0)  # let gradients through the zero-initialised residual branches
    model.train()
    x = torch.randn(2, 3, 32, 32)

    def grads(names):
        model.zero_grad()
        model(x)[0].square().mean().backward()
        return {n: model.get_submodule(n).weight.grad for n in names}

    heads = ('maxpool.logit.conv', 'layer2.0.lip.logit.conv', 'layer3.0.downsample_lip.logit.conv')
    trunk = 'layer4.0.lip_trunk.0.conv'
    got = grads(heads + (trunk, ))
    for name in heads:
        assert torch.isfinite(got[name]).all() and got[name].abs().sum() > 0, name
    assert torch.all(got[trunk] == 0)  # behind zero-initialised heads the trunk starts without gradient...
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LIP2d):
                m.logit.conv.weight.normal_(0, 0.1)
    got = grads((trunk, ))
    assert torch.isfinite(got[trunk]).all() and got[trunk].abs().sum() > 0  # ...and learns once they have moved


def test_with_cp_and_plugins():
    plugins = [dict(cfg=dict(type='GCBlock', ratio=1. / 16), stages=(False, True, True, True),
                    position='after_conv3')]
    model = LIPResNet(50, with_cp=True, plugins=plugins, out_indices=(1, ), **SMALL)
    assert any(type(m).__name__ == 'GCBlock' for m in model.layer2[0].modules())
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    model(x)[0].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_resnet_weights_load_by_name():
    # Everything but the LIP modules and the stride-2 blocks' conv2 (1x1 here, 3x3 in ResNet) keeps ResNet's names
    # and shapes, so an ImageNet ResNet checkpoint initialises the rest.
    model = LIPResNet(50)
    resnet = ResNet(50).state_dict()
    ours = model.state_dict()
    same = {k for k in resnet if k in ours and ours[k].shape == resnet[k].shape}
    assert set(resnet) - same == {f'layer{i}.0.conv2.weight' for i in (2, 3, 4)}
    load_state_dict(model, resnet)
    torch.testing.assert_close(model.layer3[1].conv2.weight,
                               resnet['layer3.1.conv2.weight'])


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=18), 'depth must be one of'),
    (dict(style='caffe'), 'style must be one of'),
    (dict(avg_down=True), 'avg_down must be False'),
    (dict(strides=(1, 3, 2, 2)), 'strides must be one of'),
    (dict(lip_width=0), 'lip_width must be a positive int'),
    (dict(lip_coeff=-1), 'lip_coeff must be a number > 0'),
])
def test_bad_arguments(kwargs, match):
    args = dict(depth=50)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LIPResNet(**args)


def test_lip_bottleneck_alone():
    down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
    block = LIPBottleneck(64, 64, stride=2, downsample=down)
    assert block(torch.randn(1, 64, 9, 9)).shape == (1, 256, 5, 5)
    with pytest.raises(ValueError, match='stride must be 1 or 2'):
        LIPBottleneck(64, 64, stride=3)
    with pytest.raises(ValueError, match='needs its downsample'):
        LIPBottleneck(64, 64, stride=2)
