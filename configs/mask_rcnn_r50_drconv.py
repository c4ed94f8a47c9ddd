# Mask R-CNN R50-FPN 1x on COCO with DRConv (Dynamic Region-Aware Convolution, m=8 regions) replacing the 3x3 conv2
# of every bottleneck in c3-c5, through ResNet's conv-type key. The 'modulated' filter generator keeps the key and
# shape of conv2's weight, so the ImageNet-pretrained conv2 weights load into it and each DRConv starts as the
# pretrained convolution. Train: python tools/train.py configs/mask_rcnn_r50_drconv.py (expects data/coco as mmdet's).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(backbone=dict(dcn=dict(type='DRConv2d', region_num=8), stage_with_dcn=(False, True, True, True)))
