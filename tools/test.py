"""Test (and evaluate) a checkpoint: python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--show-dir DIR] ...

mmdet's tools/test.py interface (COCO bbox/segm AP for Mask R-CNN configs); also takes mmseg configs (mIoU),
told apart by the config's default_scope.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

import mmlocalrel  # noqa: F401  (registers the blocks; lets mmengine load its checkpoints on torch >= 2.6)
from mmlocalrel.engine import build_runner, load_config, preflight, set_local_rank


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector (mmdet) or segmentor (mmseg)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory (under work_dir/timestamp) where painted images are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (mmengine DictAction syntax)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (the config must define it)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    scope = cfg.default_scope
    if args.show or args.show_dir:
        if scope == 'mmdet':
            from mmdet.engine.hooks.utils import trigger_visualization_hook
            cfg = trigger_visualization_hook(cfg, args)
        else:
            hook = cfg.default_hooks.visualization
            hook.draw = True
            hook.show = args.show
            hook.wait_time = args.wait_time
            if args.show_dir:
                cfg.visualizer.save_dir = args.show_dir
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta: the config must define tta_model and tta_pipeline')
        from mmengine.config import ConfigDict
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    preflight(cfg, 'test')
    runner = build_runner(cfg)
    if args.out is not None and scope == 'mmdet':
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out}')
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    main()
