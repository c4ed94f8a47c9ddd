# FCN R50-D8 (dilated ResNetV1c-50, output stride 8) on ADE20K 512x512, 80k iterations,
# with five Non-local blocks (embedded Gaussian, C/2 embeddings), the paper's 5-block model (Wang et al., CVPR 2018,
# Sec. 4): after blocks 1, 3 of res3 and 1, 3, 5 of res4, on the block output.
# Train: python tools/train.py configs/seg/fcn_r50-d8_nl5_ade20k-512x512.py
# (expects data/ade/ADEChallengeData2016 as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

# mmseg's bases use SyncBN, which needs a distributed launch: BN here so that a single process (and the CPU) can
# train and test it. For multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        # mmseg's ResNetV1c in PluginResNet form (deep stem, contract_dilation: same modules and checkpoint keys),
        # whose plugins at one position are chained (mmseg 1.2.2's ResNet keeps only the last one)
        type='PluginResNet',
        deep_stem=True,
        norm_cfg=norm_cfg,
        plugins=[
            dict(
                cfg=dict(type='NonLocalBlock', mode='embedded_gaussian', reduction=2),
                position='after_block',
                blocks=((), (1, 3), (1, 3, 5), ()))
        ]),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
