# FCN LR-Net-50-D8 on ADE20K 512x512, 80k iterations: the LR-Net-50 backbone (Hu et al., ICCV
# 2019; every bottleneck 3x3 conv a 7x7 local relation layer, m=8, squared_diff, stem 1x1 conv + 7x7 relation) in
# the D8 form of mmseg's ResNetV1c-D8: c4 and c5 keep stride 1 with dilation 2 and 4 (output stride 8). LRNet is
# mmdet's ResNet, which has no contract_dilation: every block of a dilated stage uses the stage's dilation. No
# ImageNet LR-Net-50 checkpoint is published, so the backbone trains from its own initialisation.
# Train: python tools/train.py configs/seg/fcn_lr50-d8_ade20k-512x512.py
# (expects data/ade/ADEChallengeData2016 as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

# mmseg's bases use SyncBN, which needs a distributed launch: BN here so that a single process (and the CPU) can
# train and test it. For multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LRNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        relation_cfg=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8,
                          composability='squared_diff'),
        init_cfg=None),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
