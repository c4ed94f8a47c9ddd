# FCN R50-D8 (dilated ResNetV1c-50, output stride 8) on Cityscapes 512x1024, 80k iterations,
# with a 7x7 local relation layer (m=8, squared_diff; Hu et al., ICCV 2019) in place of the 3x3 conv2 of every
# bottleneck in c3-c5, through ResNet's conv-type key (dcn/stage_with_dcn). ResNet passes kernel_size=3 to the conv
# type, so relation_kernel_size sets the 7x7 window; in the dilated stages the relation takes the stage's dilation
# (2 in c4, 4 in c5; the first block of each contracted to half, as ResNetV1c-D8's convs). The ImageNet ResNetV1c
# checkpoint initialises every other layer (the relation layers are reported missing, the replaced 3x3 weights
# unexpected); its bn2 statistics were measured on 3x3-conv outputs, and mmseg trains BN statistics anyway.
# Train: python tools/train.py configs/seg/fcn_r50-d8_lr_cityscapes-512x1024.py
# (expects data/cityscapes as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py'
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
        dcn=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8, composability='squared_diff'),
        stage_with_dcn=(False, True, True, True)),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
