"""Train a detector or segmentor: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] ...

mmdet's tools/train.py interface; also takes mmseg configs (told apart by the config's default_scope).
"""
import argparse

from mmengine.config import DictAction

import mmlocalrel  # noqa: F401  (registers the blocks; lets mmengine load its checkpoints on torch >= 2.6)
from mmlocalrel.engine import (add_rng_state_hook, build_runner, enable_amp, enable_resume, load_config, preflight,
                               set_local_rank)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector (mmdet) or segmentor (mmseg)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='automatic mixed precision (fp16 + loss scaling on GPU, bf16 autocast on CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR.')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or with no path, from the latest one in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (mmengine DictAction syntax)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if 'enable' not in cfg.get('auto_scale_lr', {}) or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr: the config has no auto_scale_lr.enable / auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    enable_resume(cfg, args.resume)
    add_rng_state_hook(cfg)
    preflight(cfg, 'train')
    runner = build_runner(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
