# Mask R-CNN FPN 1x on COCO with an LR-Net-50 backbone (Hu et al., ICCV 2019): every bottleneck 3x3 conv is a 7x7
# local relation layer (m=8, squared_diff) and the stem is 1x1 conv + 7x7 relation. No ImageNet LR-Net-50 checkpoint
# is published, so the backbone trains from its own initialisation: no frozen stage, BN statistics learned (SyncBN
# across GPUs; mmengine reverts it to BN in a non-distributed run).
# Train: python tools/train.py configs/mask_rcnn_lr50.py (expects data/coco as mmdet's).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LRNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        relation_cfg=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8,
                          composability='squared_diff'),
        init_cfg=None))
