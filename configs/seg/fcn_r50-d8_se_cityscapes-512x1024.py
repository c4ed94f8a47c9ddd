# FCN R50-D8 (dilated ResNetV1c-50, output stride 8) on Cityscapes 512x1024, 80k iterations,
# with a Squeeze-and-Excitation block (r16) in every bottleneck, on the residual branch after conv3 + BN (Hu et al.,
# CVPR 2018).
# Train: python tools/train.py configs/seg/fcn_r50-d8_se_cityscapes-512x1024.py
# (expects data/cityscapes as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

# mmseg's bases use SyncBN, which needs a distributed launch: BN here so that a single process (and the CPU) can
# train and test it. For multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys),
        # whose plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last one)
        type='PluginResNet',
        deep_stem=True,
        norm_cfg=norm_cfg,
        plugins=[dict(cfg=dict(type='SEBlock', ratio=1 / 16), position='after_conv3')]),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
