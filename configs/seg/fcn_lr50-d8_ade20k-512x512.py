# FCN LR-Net-50-D8, on ADE20K 512x512 (data/ade/ADEChallengeData2016), 80k iterations.
# The backbone (what it is and where the blocks go): configs/seg/_base_/fcn_lr50-d8.py.
# Train: python tools/train.py configs/seg/fcn_lr50-d8_ade20k-512x512.py
_base_ = ['mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py', './_base_/fcn_lr50-d8.py']
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

norm_cfg = _base_.seg_norm_cfg  # BN, not the mmseg base's SyncBN: see configs/seg/_base_/bn.py
model = dict(pretrained=None,  # no LR-Net-50 checkpoint exists (see the backbone)
             backbone=_base_.seg_backbone, decode_head=dict(norm_cfg=norm_cfg), auxiliary_head=dict(norm_cfg=norm_cfg))
