# FCN LIP-ResNet-50-D8 on ADE20K 512x512, 80k iterations: the LIP-ResNet-50 backbone (Gao et
# al., ICCV 2019: LIP pools in place of the stem's max-pool and of every stride-2 conv and shortcut) in the D8 form of
# mmseg's ResNetV1c-D8 (deep stem; c4 and c5 at stride 1 with dilation 2 and 4, so only the stem and c3's first
# block downsample, with LIP). LIPResNet is mmdet's ResNet, which has no contract_dilation: every block of a dilated
# stage uses the stage's dilation. LIP replaces downsampling itself, so it is a backbone, not a `plugins` entry.
# No checkpoint of LIP-ResNet exists: the base's ImageNet ResNetV1c-50 initialises every weight LIP-ResNet shares
# with it (all but the LIP logit modules, which start as average pooling, and the 1x1 conv2 of the stride-2 block).
# Train: python tools/train.py configs/seg/fcn_lip_r50-d8_ade20k-512x512.py
# (expects data/ade/ADEChallengeData2016 as mmseg's).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

# mmseg's bases use SyncBN, which needs a distributed launch: BN here so that a single process (and the CPU) can
# train and test it. For multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='LIPResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        deep_stem=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch'),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
