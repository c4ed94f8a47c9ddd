# Mask R-CNN R50-FPN 1x on COCO with a GC block (r16, att pooling, channel_add) after conv3 of every bottleneck
# in c3-c5, as GCNet. Train: python tools/train.py configs/mask_rcnn_r50_gc.py (expects data/coco as mmdet's).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='GCBlock', ratio=1. / 16), stages=(False, True, True, True), position='after_conv3')
    ]))
