"""tools/visualize_blocks.py on demo configs: a GC checkpoint trained for one iteration, and Non-local, LIP, Local
Relation and DRConv models saved as built; every PNG must be a valid image of the input image's size with a map
drawn on it."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from mmlocalrel.engine import load_config
from tests.conftest import demo_cfg_options, demo_options
from tests.tools.conftest import load_tool


@pytest.fixture(scope='module')
def vis_tool():
    return load_tool('visualize_blocks')


@pytest.fixture(scope='module')
def image(shapes_root):
    return sorted(glob.glob(osp.join(shapes_root, 'images', 'val', '*')))[0]


def _check_pngs(paths, image_path, names):
    source = cv2.imread(image_path, cv2.IMREAD_COLOR)
    assert sorted(osp.basename(p) for p in paths) == sorted(names)
    for path in paths:
        drawn = cv2.imread(path, cv2.IMREAD_COLOR)
        assert drawn is not None, path
        assert drawn.shape == source.shape, path
        changed = np.abs(drawn.astype(int) - source).max(axis=2) > 30
        marker = (drawn.max(axis=2) < 20) | (drawn.min(axis=2) > 235)  # the query cross is black and white
        assert (changed & ~marker).mean() > 0.01, path  # a map is drawn over the image


def test_gc_maps_of_a_trained_checkpoint(shapes_root, image, train_tool, vis_tool, tmp_path):
    config = 'configs/demo/mask_rcnn_r50_gc_shapes.py'
    runner = train_tool.main([config, '--work-dir', str(tmp_path / 'train')] + demo_options(shapes_root, max_iters=1))
    model = runner.model
    out_dir = str(tmp_path / 'vis')
    paths = vis_tool.main([config, str(tmp_path / 'train' / 'iter_1.pth'), image, '--out-dir', out_dir]
                          + demo_options(shapes_root))
    names = [f'gc_{name}.png' for name, m in model.named_modules() if type(m).__name__ == 'GCBlock']
    assert len(names) == 13  # stages 2-4 of the ResNet-50 layout
    _check_pngs(paths, image, names)
    # each block draws its own attention
    first, last = (cv2.imread(osp.join(out_dir, n)) for n in (names[0], names[-1]))
    assert not np.array_equal(first, last)


def _built_checkpoint(config, shapes_root, path):
    cfg = load_config(config, demo_cfg_options(shapes_root))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model


@pytest.mark.parametrize('config,prefix,per_point', [
    ('configs/demo/mask_rcnn_r50_nl_shapes.py', 'nl', True),
    ('configs/demo/mask_rcnn_r50_lr_shapes.py', 'lr', True),
    ('configs/demo/mask_rcnn_lip_r50_shapes.py', 'lip', False),
    ('configs/demo/mask_rcnn_r50_drconv_shapes.py', 'drconv', False),
])
def test_maps_of_each_block_type(config, prefix, per_point, shapes_root, image, vis_tool, tmp_path):
    checkpoint = str(tmp_path / 'model.pth')
    model = _built_checkpoint(config, shapes_root, checkpoint)
    if prefix == 'lip':  # built LIPs are average pooling (zero-init logits): give them something to show
        for name, module in model.named_modules():
            if type(module).__name__ == 'LIP2d':
                torch.nn.init.normal_(module.logit.head.conv.weight if hasattr(module.logit, 'head')
                                      else module.logit.conv.weight)
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    cls = dict(nl='NonLocalBlock', lr='LocalRelation2d', lip='LIP2d', drconv='DRConv2d')[prefix]
    blocks = [name for name, m in model.named_modules() if type(m).__name__ == cls]
    assert blocks
    suffixes = ['_y5_x60', '_y32_x32'] if per_point else ['']
    paths = vis_tool.main([config, checkpoint, image, '--out-dir', str(tmp_path / 'vis'), '--points', '5,60', '32,32']
                          + demo_options(shapes_root))
    _check_pngs(paths, image, [f'{prefix}_{b}{s}.png' for b in blocks for s in suffixes])


def test_bad_inputs_are_named(shapes_root, image, vis_tool, tmp_path):
    config = 'configs/demo/mask_rcnn_r50_gc_shapes.py'
    checkpoint = str(tmp_path / 'model.pth')
    _built_checkpoint(config, shapes_root, checkpoint)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        vis_tool.main([config, checkpoint, str(tmp_path / 'missing.png'), '--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        vis_tool.main([config, str(tmp_path / 'missing.pth'), image, '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit):
        vis_tool.main([config, checkpoint, image, '--out-dir', str(tmp_path), '--points', '3'])
    with pytest.raises(ValueError, match='outside the 64 x 64 image'):
        vis_tool.main([config, checkpoint, image, '--out-dir', str(tmp_path), '--points', '64,0'])
