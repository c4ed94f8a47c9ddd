# Demo overlay for the FCN-R50 segmentation configs (configs/seg/fcn_r50-d8_*): the generated shapes dataset's
# semantic maps (make data), a narrow ResNet (base width 16) trained from scratch on CPU, 128-px images, a short
# iteration schedule. mmengine forbids one key in two sibling bases, so everything here is named demo_*; a demo
# config assigns each to the real key (see configs/demo/seg/fcn_r50-d8_gc_shapes.py).
demo_data_root = 'data/shapes/'
demo_norm_cfg = dict(type='BN', requires_grad=True)
demo_image_size = 128
demo_max_iters = 1000

demo_model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(demo_image_size, demo_image_size)),
    backbone=dict(base_channels=16, stem_channels=32, norm_cfg=demo_norm_cfg),
    decode_head=dict(in_channels=512, channels=64, num_classes=4, norm_cfg=demo_norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=32, num_classes=4, norm_cfg=demo_norm_cfg))

demo_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackSegInputs')
]
demo_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
demo_train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='ShapesSegDataset',
        data_root=demo_data_root,
        data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
        pipeline=demo_train_pipeline))
demo_val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='ShapesSegDataset',
        data_root=demo_data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'),
        pipeline=demo_test_pipeline))

demo_train_cfg = dict(type='IterBasedTrainLoop', max_iters=demo_max_iters, val_interval=demo_max_iters)
demo_optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
demo_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0, power=1.0, by_epoch=False, begin=50, end=demo_max_iters)
]
demo_default_hooks = dict(
    logger=dict(interval=25), checkpoint=dict(by_epoch=False, interval=demo_max_iters, max_keep_ckpts=1))
demo_env_cfg = dict(cudnn_benchmark=False)
demo_randomness = dict(seed=0)
