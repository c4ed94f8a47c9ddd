# The backbone of configs/seg/fcn_lip_r50-d8_{cityscapes-512x1024,ade20k-512x512}.py: the LIP-ResNet-50 backbone (Gao
# et al., ICCV 2019: LIP pools in place of the stem's max-pool and of every stride-2 conv and shortcut) in the D8 form
# of mmseg's ResNetV1c-D8 (deep stem; c4 and c5 at stride 1 with dilation 2 and 4, so only the stem and c3's first
# block downsample, with LIP). LIPResNet is mmdet's ResNet, which has no contract_dilation: every block of a dilated
# stage uses the stage's dilation. LIP replaces downsampling itself, so it is a backbone, not a `plugins` entry.
# No checkpoint of LIP-ResNet exists: the base's ImageNet ResNetV1c-50 initialises every weight LIP-ResNet shares
# with it (all but the LIP logit modules, which start as average pooling, and the 1x1 conv2 of the stride-2 block).
# seg_backbone replaces the mmseg base's backbone (a config assigns it: model = dict(backbone=_base_.seg_backbone, ...);
# mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    _delete_=True,
    type='LIPResNet',
    depth=50,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    norm_eval=False,
    style='pytorch')
