# The backbone of configs/seg/fcn_r50-d8_nl_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with one Non-local block (embedded Gaussian, C/2 embeddings, zero-initialised output)
# on the output of block 4 of res4's six, right before its last block, as Wang et al. (CVPR 2018, Sec. 6) for COCO.
# seg_backbone updates the mmseg base's backbone (a config assigns it: model = dict(backbone=_base_.seg_backbone, ...);
# mmengine forbids `model` in two sibling bases).
_base_ = './bn.py'

seg_backbone = dict(
    # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys),
    # whose plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last one)
    type='PluginResNet',
    deep_stem=True,
    norm_cfg=_base_.seg_norm_cfg,
    plugins=[
        dict(
            cfg=dict(type='NonLocalBlock', mode='embedded_gaussian', reduction=2),
            position='after_block',
            blocks=((), (), (4, ), ()))
    ])
