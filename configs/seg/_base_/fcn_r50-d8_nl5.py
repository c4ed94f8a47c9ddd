# The backbone of configs/seg/fcn_r50-d8_nl5_{cityscapes-512x1024,ade20k-512x512}.py: FCN R50-D8's dilated
# ResNetV1c-50 (output stride 8) with five Non-local blocks (embedded Gaussian, C/2 embeddings), the paper's 5-block
# model (Wang et al., CVPR 2018, Sec. 4): after blocks 1, 3 of res3 and 1, 3, 5 of res4, on the block output.
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
            blocks=((), (1, 3), (1, 3, 5), ()))
    ])
