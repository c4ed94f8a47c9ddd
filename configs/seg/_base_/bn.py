# The norm layer of every configs/seg config (backbone, decode head and auxiliary head). mmseg's bases use SyncBN,
# which needs a distributed launch: BN here so that a single process (and the CPU) can train and test them. For
# multi-GPU training, set norm_cfg back to SyncBN (--cfg-options or a child config; docs/segmentation.md).
# mmengine forbids one key in two sibling bases and a config's mmseg base already has norm_cfg, so the name here is
# seg_norm_cfg; the backbone fragments (configs/seg/_base_/<model>.py) inherit it and a config assigns it:
#   norm_cfg = _base_.seg_norm_cfg
seg_norm_cfg = dict(type='BN', requires_grad=True)
