# FCN R50-D8 with SE blocks in every bottleneck, on Cityscapes 512x1024 (data/cityscapes), 80k iterations.
# The backbone (what it is and where the blocks go): configs/seg/_base_/fcn_r50-d8_se.py.
# Train: python tools/train.py configs/seg/fcn_r50-d8_se_cityscapes-512x1024.py
_base_ = ['mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py', './_base_/fcn_r50-d8_se.py']
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

norm_cfg = _base_.seg_norm_cfg  # BN, not the mmseg base's SyncBN: see configs/seg/_base_/bn.py
model = dict(backbone=_base_.seg_backbone, decode_head=dict(norm_cfg=norm_cfg), auxiliary_head=dict(norm_cfg=norm_cfg))
