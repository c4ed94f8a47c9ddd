# Mask R-CNN R50-FPN with one Non-local block right before the last residual block of res4, where Wang et al.
# (Non-local Neural Networks, CVPR 2018, Sec. 6) put it for COCO: on the output of block 4 of res4's six blocks
# (stage index 2), between two residual blocks. Embedded Gaussian, C/2 embeddings, zero-initialised output.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='PluginResNet',
        plugins=[
            dict(
                cfg=dict(type='NonLocalBlock', mode='embedded_gaussian', reduction=2),
                position='after_block',
                blocks=((), (), (4, ), ()))
        ]))
