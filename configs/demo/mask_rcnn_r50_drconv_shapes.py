# configs/mask_rcnn_r50_drconv.py at demo size on the generated shapes dataset (make demo).
_base_ = ['../mask_rcnn_r50_drconv.py', './_base_/shapes_mask_rcnn.py']

model = _base_.demo_model
train_dataloader = _base_.demo_train_dataloader
val_dataloader = _base_.demo_val_dataloader
test_dataloader = _base_.demo_val_dataloader
val_evaluator = _base_.demo_val_evaluator
test_evaluator = _base_.demo_val_evaluator
train_cfg = _base_.demo_train_cfg
optim_wrapper = _base_.demo_optim_wrapper
param_scheduler = _base_.demo_param_scheduler
default_hooks = _base_.demo_default_hooks
log_processor = _base_.demo_log_processor
randomness = _base_.demo_randomness
