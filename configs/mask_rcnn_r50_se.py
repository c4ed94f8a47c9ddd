# Mask R-CNN R50-FPN with a Squeeze-and-Excitation block in every bottleneck (Hu et al., CVPR 2018): on the residual
# branch after conv3 + BN, before the sum with the identity, reduction r = 16. mmdet's own ResNet takes it as a
# plugin (SEBlock accepts the in_channels that plugins pass).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(plugins=[dict(cfg=dict(type='SEBlock', ratio=1 / 16), position='after_conv3')]))
