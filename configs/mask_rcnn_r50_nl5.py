# Mask R-CNN R50-FPN with five Non-local blocks, the paper's 5-block model (Wang et al., CVPR 2018, Sec. 4):
# 2 in res3 and 3 in res4, after every other residual block (blocks 1, 3 of res3; 1, 3, 5 of res4), on the block
# output as in the authors' code and mmaction2's ResNet3d.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='PluginResNet',
        plugins=[
            dict(
                cfg=dict(type='NonLocalBlock', mode='embedded_gaussian', reduction=2),
                position='after_block',
                blocks=((), (1, 3), (1, 3, 5), ()))
        ]))
