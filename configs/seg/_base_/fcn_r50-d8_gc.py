# The backbone of configs/seg/fcn_r50-d8_gc_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with a GC block (r16, att pooling, channel_add) after conv3 of every bottleneck in
# c3-c5, as GCNet (Cao et al., 2019). seg_backbone updates the mmseg base's backbone (a config assigns it:
# model = dict(backbone=_base_.seg_backbone, ...); mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys),
    # whose plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last one)
    type='PluginResNet',
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    plugins=[
        dict(cfg=dict(type='GCBlock', ratio=1. / 16), stages=(False, True, True, True), position='after_conv3')
    ])
