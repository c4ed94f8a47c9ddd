# The backbone of configs/seg/fcn_lr50-d8_{cityscapes-512x1024,ade20k-512x512}.py: the LR-Net-50 backbone (Hu et al.,
# ICCV 2019; every bottleneck 3x3 conv a 7x7 local relation layer, m=8, squared_diff, stem 1x1 conv + 7x7 relation) in
# the D8 form of mmseg's ResNetV1c-D8: c4 and c5 keep stride 1 with dilation 2 and 4 (output stride 8). LRNet is
# mmdet's ResNet, which has no contract_dilation: every block of a dilated stage uses the stage's dilation. No
# ImageNet LR-Net-50 checkpoint is published, so the backbone trains from its own initialisation (the configs set
# model.pretrained=None). seg_backbone replaces the mmseg base's backbone (a config assigns it:
# model = dict(backbone=_base_.seg_backbone, ...); mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    _delete_=True,
    type='LRNet',
    depth=50,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    norm_cfg=_base_.seg_norm_cfg,
    norm_eval=False,
    style='pytorch',
    relation_cfg=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8,
                      composability='squared_diff'),
    init_cfg=None)
