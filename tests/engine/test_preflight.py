"""Bad configs and broken data fail before training starts, with the key or the file named."""
import os
import shutil

import pytest

from mmlocalrel.engine import ConfigError, load_config, preflight
from tests.conftest import demo_cfg_options
from tests.tools.conftest import load_tool

CONFIG = 'configs/demo/mask_rcnn_r50_gc_shapes.py'


@pytest.fixture
def broken_root(shapes_root, tmp_path):
    root = str(tmp_path / 'shapes')
    shutil.copytree(shapes_root, root)
    return root


def _cfg(root, **extra):
    return load_config(CONFIG, dict(demo_cfg_options(root), **extra))


def test_a_good_config_passes(shapes_root):
    preflight(_cfg(shapes_root), 'train')
    preflight(_cfg(shapes_root), 'test')


def test_unknown_block_names_the_key_and_suggests(shapes_root):
    cfg = _cfg(shapes_root)
    cfg.model.backbone.plugins[0].cfg.type = 'GCBlok'
    with pytest.raises(ConfigError, match=r"model\.backbone\.plugins\[0\]\.cfg\.type: unknown type 'GCBlok'.*"
                                          r"Did you mean 'GCBlock'"):
        preflight(cfg, 'train')


def test_unknown_backbone_and_conv_type(shapes_root):
    cfg = _cfg(shapes_root)
    cfg.model.backbone.type = 'LRNett'
    with pytest.raises(ConfigError, match=r"model\.backbone\.type: unknown type 'LRNett'"):
        preflight(cfg, 'train')
    cfg = _cfg(shapes_root)
    cfg.model.backbone.dcn = dict(type='DRConv')
    with pytest.raises(ConfigError, match=r"model\.backbone\.dcn\.type: unknown type 'DRConv'"):
        preflight(cfg, 'train')


def test_wrong_plugin_position_lists_the_allowed_ones(shapes_root):
    cfg = _cfg(shapes_root)
    cfg.model.backbone.plugins[0].position = 'after_conv4'
    with pytest.raises(ConfigError, match=r"model\.backbone\.plugins\[0\]\.position must be one of "
                                          r"\('after_conv1', 'after_conv2', 'after_conv3'\) for ResNet"):
        preflight(cfg, 'train')


def test_missing_image_is_named(broken_root):
    os.remove(os.path.join(broken_root, 'images', 'val', '000002.png'))
    with pytest.raises(FileNotFoundError, match=r'val_dataloader\.dataset: 1 image\(s\) .*images/val/000002\.png'):
        preflight(_cfg(broken_root), 'train')


@pytest.mark.parametrize('content,match', [('', 'annotation file is empty'),
                                           ('{"images": [', 'not valid JSON'),
                                           ('{"images": []}', 'lists no images')])
def test_bad_annotation_file_is_named(broken_root, content, match):
    with open(os.path.join(broken_root, 'annotations', 'instances_train.json'), 'w') as f:
        f.write(content)
    with pytest.raises(ValueError, match=rf'train_dataloader\.dataset\.ann_file: .*{match}.*instances_train\.json'):
        preflight(_cfg(broken_root), 'train')


def test_missing_annotation_file_is_named(broken_root):
    os.remove(os.path.join(broken_root, 'annotations', 'instances_val.json'))
    with pytest.raises(FileNotFoundError, match=r'test_dataloader\.dataset\.ann_file: .*instances_val\.json'):
        preflight(_cfg(broken_root), 'test')


def test_train_tool_stops_before_building_the_runner(broken_root, tmp_path, monkeypatch):
    train = load_tool('train')
    built = []
    monkeypatch.setattr(train, 'build_runner', lambda cfg: built.append(cfg))
    os.remove(os.path.join(broken_root, 'images', 'train', '000001.png'))
    options = ['--cfg-options'] + [f'{k}={v}' for k, v in demo_cfg_options(broken_root).items()]
    with pytest.raises(FileNotFoundError, match='000001.png'):
        train.main([CONFIG, '--work-dir', str(tmp_path)] + options)
    assert not built
