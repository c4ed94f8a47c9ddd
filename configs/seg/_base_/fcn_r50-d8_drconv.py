# The backbone of configs/seg/fcn_r50-d8_drconv_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with DRConv (Dynamic Region-Aware Convolution, m=8 regions; Chen et al., CVPR 2021) in
# place of the 3x3 conv2 of every bottleneck in c3-c5, through ResNet's conv-type key (dcn/stage_with_dcn). In the
# dilated stages it takes the stage's dilation (2 in c4, 4 in c5; the first block of each contracted to half, as
# ResNetV1c-D8's convs). The 'modulated' filter generator keeps the key and shape of conv2's weight, so the ImageNet
# ResNetV1c conv2 weights load into it and each DRConv starts as the pretrained convolution.
# seg_backbone updates the mmseg base's backbone (a config assigns it: model = dict(backbone=_base_.seg_backbone, ...);
# mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys)
    type='PluginResNet',
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    dcn=dict(type='DRConv2d', region_num=8),
    stage_with_dcn=(False, True, True, True))
