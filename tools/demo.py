"""make demo: train a demo config from scratch on the generated shapes dataset, then evaluate it and print the result.

python tools/demo.py configs/demo/mask_rcnn_r50_gc_shapes.py [--work-dir DIR] [--cfg-options ...]
"""
import argparse
import glob
import importlib.util
import os.path as osp
import time

from mmengine.config import DictAction



def _tool(name):
    # tools/ is not a package; load tools/<name>.py by path (a plain `import test` would find Python's own)
    spec = importlib.util.spec_from_file_location(f'mmlocalrel_tools_{name}', osp.join(osp.dirname(__file__), name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool, test_tool = _tool('train'), _tool('test')

# The metrics a demo reports, per scope: (metric key, label)
REPORT = {
    'mmdet': [('coco/bbox_mAP', 'bbox AP'), ('coco/segm_mAP', 'segm AP')],
    'mmseg': [('mIoU', 'mIoU')],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    extra = ['--cfg-options'] + [f'{k}={v}' for k, v in args.cfg_options.items()] if args.cfg_options else []

    start = time.time()
    runner = train_tool.main([args.config, '--work-dir', args.work_dir] + extra)
    trained = time.time()
    scope = runner.cfg.default_scope
    checkpoint = sorted(glob.glob(osp.join(args.work_dir, 'iter_*.pth')), key=osp.getmtime)[-1]
    metrics = test_tool.main([args.config, checkpoint, '--work-dir', args.work_dir] + extra)
    end = time.time()

    print(f'\n== demo: {args.config}')
    for key, label in REPORT[scope]:
        value = metrics[key]
        print(f'{label}: {value / 100 if scope == "mmseg" else value:.3f}')
    print(f'train {trained - start:.0f} s + test {end - trained:.0f} s = {(end - start) / 60:.1f} min '
          f'(checkpoint {checkpoint})')


if __name__ == '__main__':
    main()
