# FCN R50-D8 (dilated ResNetV1c-50, output stride 8) on ADE20K 512x512, 80k iterations,
# with DRConv (Dynamic Region-Aware Convolution, m=8 regions; Chen et al., CVPR 2021) in place of the 3x3 conv2 of
# every bottleneck in c3-c5, through ResNet's conv-type key (dcn/stage_with_dcn). In the dilated stages it takes the
# stage's dilation (2 in c4, 4 in c5; the first block of each contracted to half, as ResNetV1c-D8's convs). The
# 'modulated' filter generator keeps the key and shape of conv2's weight, so the ImageNet ResNetV1c conv2 weights
# load into it and each DRConv starts as the pretrained convolution.
# Train: python tools/train.py configs/seg/fcn_r50-d8_drconv_ade20k-512x512.py
# (expects data/ade/ADEChallengeData2016 as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

# mmseg's bases use SyncBN, which needs a distributed launch: BN here so that a single process (and the CPU) can
# train and test it. For multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys)
        type='PluginResNet',
        deep_stem=True,
        norm_cfg=norm_cfg,
        dcn=dict(type='DRConv2d', region_num=8),
        stage_with_dcn=(False, True, True, True)),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
