# The backbone of configs/seg/fcn_r50-d8_lr_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with a 7x7 local relation layer (m=8, squared_diff; Hu et al., ICCV 2019) in place of
# the 3x3 conv2 of every bottleneck in c3-c5, through ResNet's conv-type key (dcn/stage_with_dcn). ResNet passes
# kernel_size=3 to the conv type, so relation_kernel_size sets the 7x7 window; in the dilated stages the relation takes
# the stage's dilation (2 in c4, 4 in c5; the first block of each contracted to half, as ResNetV1c-D8's convs). The
# ImageNet ResNetV1c checkpoint initialises every other layer (the relation layers are reported missing, the replaced
# 3x3 weights unexpected); its bn2 statistics were measured on 3x3-conv outputs, and mmseg trains BN statistics anyway.
# seg_backbone updates the mmseg base's backbone (a config assigns it: model = dict(backbone=_base_.seg_backbone, ...);
# mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys)
    type='PluginResNet',
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    dcn=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8, composability='squared_diff'),
    stage_with_dcn=(False, True, True, True))
