# configs/seg/fcn_r50-d8_nl_{cityscapes-512x1024,ade20k-512x512}.py (one model, two datasets) at demo size on the
# generated shapes dataset: python tools/demo.py configs/demo/seg/fcn_r50-d8_nl_shapes.py --work-dir DIR
_base_ = ['../../seg/fcn_r50-d8_nl_cityscapes-512x1024.py', '../_base_/shapes_fcn.py']

model = _base_.demo_model
train_dataloader = _base_.demo_train_dataloader
val_dataloader = _base_.demo_val_dataloader
test_dataloader = _base_.demo_val_dataloader
train_cfg = _base_.demo_train_cfg
optim_wrapper = _base_.demo_optim_wrapper
param_scheduler = _base_.demo_param_scheduler
default_hooks = _base_.demo_default_hooks
env_cfg = _base_.demo_env_cfg
randomness = _base_.demo_randomness
