# The backbone of configs/seg/fcn_r50-d8_se_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with a Squeeze-and-Excitation block (r16) in every bottleneck, on the residual branch
# after conv3 + BN (Hu et al., CVPR 2018). seg_backbone updates the mmseg base's backbone (a config assigns it:
# model = dict(backbone=_base_.seg_backbone, ...); mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys),
    # whose plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last one)
    type='PluginResNet',
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    plugins=[dict(cfg=dict(type='SEBlock', ratio=1 / 16), position='after_conv3')])
