# Mask R-CNN R50-FPN 1x on COCO with a 7x7 local relation layer (m=8, squared_diff) in place of the 3x3 conv2 of
# every bottleneck in c3-c5, through ResNet's conv-type key. mmdet's Bottleneck passes kernel_size=3 to the conv
# type, so relation_kernel_size sets the 7x7 window. The ImageNet ResNet-50 checkpoint initialises every other layer
# (the relation layers are reported missing, the replaced 3x3 weights unexpected). The pretrained bn2 statistics were
# measured on 3x3-conv outputs, so BN statistics are learned here (SyncBN, norm_eval=False), as mmdet's SyncBN GCNet
# configs do.
# Train: python tools/train.py configs/mask_rcnn_r50_lr.py (expects data/coco as mmdet's).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        dcn=dict(type='LocalRelation2d', relation_kernel_size=7, channels_per_group=8, composability='squared_diff'),
        stage_with_dcn=(False, True, True, True)))
