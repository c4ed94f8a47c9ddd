"""What tools/train.py and tools/test.py share: the config edits their command-line flags make (mmdet's CLI), for
mmdet and mmseg configs alike (told apart by the config's default_scope)."""
import os
import os.path as osp

import torch
from mmengine.config import Config

SCOPES = ('mmdet', 'mmseg')


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope', None)
    if scope not in SCOPES:
        raise ValueError(f'{path}: default_scope must be one of {SCOPES} (inherit an mmdet:: or mmseg:: base), '
                         f'got {scope!r}')
    if launcher != 'none':
        from .distributed import setup_cpu_distributed
        setup_cpu_distributed(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def enable_amp(cfg):
    """--amp: mmengine's AmpOptimWrapper (fp16, dynamic loss scale) on a GPU; bf16 autocast on CPU."""
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'CPUAutocastOptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)


def enable_resume(cfg, resume):
    """--resume [CKPT]: the latest checkpoint of the work dir ('auto') or the given one."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume


def add_rng_state_hook(cfg):
    """Make --resume continue with the interrupted run's random state (see hooks.RNGStateHook)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') == 'RNGStateHook' for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='RNGStateHook')]


def set_local_rank(local_rank):
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def build_runner(cfg):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
