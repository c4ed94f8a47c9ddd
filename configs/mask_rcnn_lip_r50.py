# Mask R-CNN R50-FPN 1x on COCO with a LIP-ResNet-50 backbone (LIP, ICCV 2019): LIP pools in place of the stem's
# max-pool and of every stride-2 conv and shortcut. LIP replaces downsampling itself, so it is a backbone, not a
# `plugins` entry. Train: python tools/train.py configs/mask_rcnn_lip_r50.py (expects data/coco as mmdet's).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocalrel'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='LIPResNet',
        # No OpenMMLab checkpoint of LIP-ResNet exists: the base's torchvision ResNet-50 initialises every weight
        # that LIP-ResNet shares with it (all but the LIP logit modules, which start as average pooling, and the
        # 1x1 conv2 of the three stride-2 blocks). The stem's LIP is not in it, so the stem stays trainable.
        frozen_stages=-1))
