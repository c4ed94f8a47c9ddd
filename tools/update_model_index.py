"""Write model-index.yml and configs/metafiles/<family>/metafile.yml (OpenMMLab format) from the configs present.

python tools/update_model_index.py           # rewrite the files
python tools/update_model_index.py --check   # exit 1 if they are out of date (tests run this)

A config belongs to the first family whose token its file name holds; results measured here are in RESULTS.
"""
import argparse
import glob
import os.path as osp
import sys

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# family: (collection name, token in the config file name, paper title, paper URL, architecture)
FAMILIES = {
    'gcnet': ('GCNet', '_gc', 'GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond',
              'https://arxiv.org/abs/1904.11492', 'Global Context Block'),
    'se': ('SENet', '_se', 'Squeeze-and-Excitation Networks', 'https://arxiv.org/abs/1709.01507',
           'Squeeze-and-Excitation Block'),
    'nonlocal': ('Non-local', '_nl', 'Non-local Neural Networks', 'https://arxiv.org/abs/1711.07971',
                 'Non-local Block'),
    'drconv': ('DRConv', 'drconv', 'Dynamic Region-Aware Convolution', 'https://arxiv.org/abs/2003.12243',
               'Dynamic Region-Aware Convolution'),
    'lip': ('LIP', 'lip', 'LIP: Local Importance-based Pooling', 'https://arxiv.org/abs/1908.04156',
            'Local Importance-based Pooling'),
    'local_relation': ('LR-Net', '_lr', 'Local Relation Networks for Image Recognition',
                       'https://arxiv.org/abs/1904.11491', 'Local Relation Layer'),
}

# measured here (README, `make demo`): config -> list of (task, dataset, metrics)
RESULTS = {
    'configs/demo/mask_rcnn_r50_gc_shapes.py': [
        {'Task': 'Object Detection', 'Dataset': 'Shapes (generated)', 'Metrics': {'box AP': 66.1}},
        {'Task': 'Instance Segmentation', 'Dataset': 'Shapes (generated)', 'Metrics': {'mask AP': 71.7}}],
    'configs/demo/seg/fcn_r50-d8_gc_shapes.py': [
        {'Task': 'Semantic Segmentation', 'Dataset': 'Shapes (generated)', 'Metrics': {'mIoU': 74.57}}],
}


def family_of(path):
    name = osp.basename(path)
    for family, (_, token, *_rest) in FAMILIES.items():
        if token in name:
            return family
    raise ValueError(f'{path}: no family token ({", ".join(f[1] for f in FAMILIES.values())}) in its name; '
                     'add one to FAMILIES in tools/update_model_index.py')


def configs():
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths if '_base_' not in p)


def build():
    files = {}
    grouped = {}
    for path in configs():
        grouped.setdefault(family_of(path), []).append(path)
    for family, paths in sorted(grouped.items()):
        name, _, title, url, arch = FAMILIES[family]
        models = []
        for path in paths:
            task = 'Semantic Segmentation' if '/seg/' in path else 'Instance Segmentation'
            demo = '/demo/' in path
            model = {
                'Name': osp.splitext(osp.basename(path))[0],
                'In Collection': name,
                'Config': path,
                'Metadata': {'Training Data': 'Shapes (generated)' if demo else (
                    'Cityscapes' if 'cityscapes' in path else 'ADE20K' if 'ade20k' in path else 'COCO'),
                             'Task': task},
            }
            if path in RESULTS:
                model['Results'] = RESULTS[path]
            models.append(model)
        files[f'configs/metafiles/{family}/metafile.yml'] = {
            'Collections': [{'Name': name, 'Metadata': {'Architecture': [arch]},
                             'Paper': {'Title': title, 'URL': url}, 'README': 'README.md'}],
            'Models': models,
        }
    files['model-index.yml'] = {'Import': sorted(p for p in files)}
    return {path: yaml.safe_dump(content, sort_keys=False, width=120) for path, content in files.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    stale = []
    for path, text in build().items():
        full = osp.join(ROOT, path)
        current = open(full).read() if osp.exists(full) else None
        if current != text:
            stale.append(path)
            if not args.check:
                import os
                os.makedirs(osp.dirname(full) or '.', exist_ok=True)
                with open(full, 'w') as f:
                    f.write(text)
    if args.check and stale:
        print('out of date: ' + ', '.join(stale) + ' (run python tools/update_model_index.py)')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
