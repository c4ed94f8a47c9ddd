"""Checks run by tools/train.py and tools/test.py before anything is built, so that a typo or a broken dataset fails
in a second with the key or the file named, rather than minutes into training (or deep in a registry traceback).

- the blocks a config names (backbone type, plugin types and positions, conv types) are registered;
- every annotation file exists and parses, is not empty, and every image it lists exists;
- a segmentation dataset's image and label folders exist and hold files.
"""
import difflib
import json
import os.path as osp

from mmengine.registry import MODELS

# where ResNet-style backbones accept plugins; PluginResNet adds 'after_block' (its own module defines them)
MMDET_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


class ConfigError(ValueError):
    """A config names something that does not exist; the message names the key."""


def _get(type_name):
    # look up as a build would: in the default scope's registry (mmdet/mmseg), then its parents
    with MODELS.switch_scope_and_registry(None) as registry:
        return registry.get(type_name)


def _registered(type_name):
    if not isinstance(type_name, str):
        return True  # a class object given directly
    return _get(type_name) is not None


def _known_types():
    registries = [MODELS, *MODELS.children.values()]
    return {name: cls for registry in registries for name, cls in registry.module_dict.items()}


def _unknown(key, type_name):
    known = _known_types()
    ours = sorted(n for n, cls in known.items() if cls.__module__.startswith('mmlocalrel.models'))
    close = difflib.get_close_matches(str(type_name), list(known), n=3)
    hint = f' Did you mean {" or ".join(map(repr, close))}?' if close else ''
    return ConfigError(f'{key}: unknown type {type_name!r} (not registered; a block of this package needs '
                       f"custom_imports = dict(imports=['mmlocalrel'])).{hint} mmlocalrel provides: {', '.join(ours)}")


def check_model(cfg):
    backbone = cfg.get('model', {}).get('backbone')
    if not backbone:
        return
    if not _registered(backbone.get('type')):
        raise _unknown('model.backbone.type', backbone.get('type'))
    backbone_cls = _get(backbone['type']) if isinstance(backbone['type'], str) else backbone['type']
    positions = getattr(__import__(backbone_cls.__module__, fromlist=['_']), 'POSITIONS', MMDET_POSITIONS)
    for i, plugin in enumerate(backbone.get('plugins') or []):
        key = f'model.backbone.plugins[{i}]'
        if 'cfg' not in plugin or 'type' not in plugin['cfg']:
            raise ConfigError(f'{key}: a plugin entry is dict(cfg=dict(type=...), position=..., stages=...)')
        if not _registered(plugin['cfg']['type']):
            raise _unknown(f'{key}.cfg.type', plugin['cfg']['type'])
        if plugin.get('position') not in positions:
            raise ConfigError(f'{key}.position must be one of {tuple(positions)} for {backbone["type"]}, '
                              f'got {plugin.get("position")!r}')
    for conv_key in ('dcn', 'conv_cfg'):
        conv = backbone.get(conv_key)
        if conv and not _registered(conv.get('type')):
            raise _unknown(f'model.backbone.{conv_key}.type', conv.get('type'))


def _datasets(cfg, loaders):
    for loader in loaders:
        dataloader = cfg.get(loader)
        if not dataloader:
            continue
        dataset = dataloader['dataset']
        while 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset['dataset']
        yield loader, dataset


def _join(root, path):
    return path if not root or osp.isabs(path) else osp.join(root, path)


def check_coco(key, dataset):
    ann_file = _join(dataset.get('data_root', ''), dataset['ann_file'])
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'{key}.ann_file: annotation file not found: {ann_file}')
    if osp.getsize(ann_file) == 0:
        raise ValueError(f'{key}.ann_file: annotation file is empty: {ann_file}')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{key}.ann_file: annotation file is not valid JSON ({e}): {ann_file}') from e
    if not isinstance(coco, dict) or not coco.get('images'):
        raise ValueError(f'{key}.ann_file: annotation file lists no images: {ann_file}')
    if 'annotations' not in coco or 'categories' not in coco:
        raise ValueError(f"{key}.ann_file: not a COCO instances file (no 'annotations'/'categories'): {ann_file}")
    img_dir = _join(dataset.get('data_root', ''), (dataset.get('data_prefix') or {}).get('img', ''))
    missing = [im['file_name'] for im in coco['images'] if not osp.isfile(osp.join(img_dir, im['file_name']))]
    if missing:
        raise FileNotFoundError(f'{key}: {len(missing)} image(s) listed in {ann_file} are missing from {img_dir}, '
                                f'e.g. {osp.join(img_dir, missing[0])}')


def check_segmentation(key, dataset):
    prefix = dataset.get('data_prefix') or {}
    for name in ('img_path', 'seg_map_path'):
        if name not in prefix:
            continue
        folder = _join(dataset.get('data_root', ''), prefix[name])
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{key}.data_prefix.{name}: folder not found: {folder}')


def check_data(cfg, loaders):
    for loader, dataset in _datasets(cfg, loaders):
        key = f'{loader}.dataset'
        if str(dataset.get('ann_file', '')).endswith('.json'):
            check_coco(key, dataset)
        elif cfg.default_scope == 'mmseg':
            check_segmentation(key, dataset)


def preflight(cfg, mode):
    """Run the checks for ``mode`` 'train' (train and val data) or 'test' (test data)."""
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    check_model(cfg)
    loaders = ('train_dataloader', 'val_dataloader') if mode == 'train' else ('test_dataloader', )
    if mode == 'train' and cfg.get('val_cfg') is None:
        loaders = ('train_dataloader', )
    check_data(cfg, loaders)
