# Demo overlay for Mask R-CNN configs: the generated shapes dataset (make data), a narrow GN ResNet (base width 16)
# trained from scratch on CPU, 128-px images, a short iteration schedule. mmengine forbids one key in two sibling
# bases, so everything here is named demo_*; a demo config assigns each to the real key (see mask_rcnn_r50_gc_shapes.py).
#
# What makes it fit 10 minutes on 2 cores: mmcv's CPU RoIAlign is single-threaded and, at the COCO settings (512
# sampled RoIs per image, adaptive sampling), its backward alone took 45% of an iteration. A 128-px image with 1-4
# objects needs far fewer: 64 sampled RoIs (up to 16 positives), 500 proposals, one sampling point per bin. That
# cuts an iteration ~3x, and the number of iterations is what gets AP over 0.6 (bbox AP 0.60 after 1500 iterations,
# 0.66 after 1800: README, 'The embedded dataset and the demo').
demo_data_root = 'data/shapes/'
demo_norm_cfg = dict(type='GN', num_groups=8, requires_grad=True)
demo_image_size = 128
demo_max_iters = 1800

demo_model = dict(
    backbone=dict(base_channels=16, norm_cfg=demo_norm_cfg, norm_eval=False, frozen_stages=-1, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, roi_layer=dict(sampling_ratio=1)),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=64, roi_layer=dict(sampling_ratio=1)),
        mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=64))))

demo_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(demo_image_size, demo_image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
demo_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(demo_image_size, demo_image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
demo_train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='ShapesInstanceDataset',
        data_root=demo_data_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=demo_train_pipeline))
demo_val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='ShapesInstanceDataset',
        data_root=demo_data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        pipeline=demo_test_pipeline))
demo_val_evaluator = dict(ann_file=demo_data_root + 'annotations/instances_val.json')

demo_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=demo_max_iters, val_interval=demo_max_iters)
demo_optim_wrapper = dict(optimizer=dict(lr=0.02), clip_grad=dict(max_norm=10, norm_type=2))
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=demo_max_iters,
         milestones=[int(demo_max_iters * 0.75), int(demo_max_iters * 0.92)], gamma=0.1)
]
demo_default_hooks = dict(
    logger=dict(interval=25), checkpoint=dict(by_epoch=False, interval=demo_max_iters, max_keep_ckpts=1))
demo_log_processor = dict(by_epoch=False)
demo_randomness = dict(seed=0)
