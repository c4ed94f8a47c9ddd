"""Every config builds its model and trains one step: real configs on a synthetic batch (their full-size models,
small images), demo configs through mmengine's Runner on generated data (their pipeline, dataset and schedule).

Detection configs: configs/<name>.py has its demo variant configs/demo/<name>_*.py. Segmentation configs:
configs/seg/<model>_<block>_<dataset>.py (one per dataset, same model) share configs/demo/seg/<model>_<block>_shapes.py,
which inherits one of them; the test checks that they all differ from it by their data only."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, init_default_scope

import mmlocalrel  # noqa: F401
from mmlocalrel.engine import build_runner, enable_amp, load_config
from tests.conftest import demo_cfg_options, seg_demo_cfg_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALL = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p)
DEMO = [p for p in ALL if osp.sep + 'demo' + osp.sep in p]
REAL = [p for p in ALL if p not in DEMO]
SEG_DEMO_DIR = osp.join(ROOT, 'configs', 'demo', 'seg')
rel = lambda p: osp.relpath(p, ROOT)  # noqa: E731


def _is_seg(path):
    return rel(path).split(osp.sep)[-2] == 'seg'  # configs/seg/*.py, configs/demo/seg/*.py


def _seg_demo_of(path):
    """configs/seg/fcn_r50-d8_gc_cityscapes-512x1024.py -> configs/demo/seg/fcn_r50-d8_gc_shapes.py"""
    model_and_block = osp.splitext(osp.basename(path))[0].rsplit('_', 1)[0]
    return osp.join(SEG_DEMO_DIR, model_and_block + '_shapes.py')


def test_configs_are_found():
    assert any(p.endswith('mask_rcnn_r50_gc.py') for p in REAL)
    assert any(p.endswith('mask_rcnn_r50_gc_shapes.py') for p in DEMO)
    assert any(p.endswith(osp.join('seg', 'fcn_r50-d8_gc_cityscapes-512x1024.py')) for p in REAL)
    assert any(p.endswith(osp.join('seg', 'fcn_r50-d8_gc_ade20k-512x512.py')) for p in REAL)
    assert any(p.endswith(osp.join('seg', 'fcn_r50-d8_gc_shapes.py')) for p in DEMO)


@pytest.mark.parametrize('path', REAL, ids=rel)
def test_every_real_config_has_a_demo_variant(path):
    if not _is_seg(path):
        name = osp.splitext(osp.basename(path))[0]
        assert any(osp.basename(d).startswith(name + '_') for d in DEMO), f'no configs/demo/{name}_*.py'
        return
    demo = _seg_demo_of(path)
    assert demo in DEMO, f'no {rel(demo)}'
    # the demo inherits one real config of its group, and every config of the group has the same model apart from
    # its data-dependent keys (classes, crop size), so the demo's Runner test stands for all of them
    group = [p for p in REAL if _is_seg(p) and _seg_demo_of(p) == demo]
    bases = [osp.normpath(osp.join(osp.dirname(demo), b)) for b in Config._get_base_files(demo)]
    assert set(bases) & set(group), f'{rel(demo)} inherits none of {[rel(p) for p in group]}'

    def model_of(p):
        model = Config.fromfile(p).model.to_dict()
        model.pop('data_preprocessor')
        for head in ('decode_head', 'auxiliary_head'):
            model.get(head, {}).pop('num_classes', None)
        return model
    assert model_of(path) == model_of(group[0])


def _synthetic_batch(cfg, model):
    if cfg.default_scope == 'mmseg':
        return _synthetic_seg_batch(cfg, model)
    from mmdet.testing import demo_mm_inputs
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                            num_classes=num_classes, with_mask=True)
    return model.data_preprocessor(packed, True)


def _synthetic_seg_batch(cfg, model):
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    num_classes = cfg.model.decode_head.num_classes
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g))
        label = torch.randint(0, num_classes, (1, 32, 32), generator=g)
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label),
                                     metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32))))
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


@pytest.mark.parametrize('path', REAL, ids=rel)
def test_real_config_builds_and_trains_a_step(path):
    cfg = Config.fromfile(path)
    assert 'mmlocalrel' in cfg.custom_imports['imports'] and cfg.custom_imports.get('allow_failed_imports') is False
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg = None  # no pretrained weights can be downloaded here
    if cfg.default_scope == 'mmseg':
        assert 'SyncBN' not in str(cfg.model), 'single-process configs must not need SyncBN'
        cfg.model.pretrained = None
        cfg.model.data_preprocessor.size = (32, 32)  # the real crop (512x1024) is too slow for a CPU test
    model = MODELS.build(cfg.model)
    model.train()
    data = _synthetic_batch(cfg, model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
    before = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    losses = model.train_step(data, optim)
    assert all(torch.isfinite(v).all() for v in losses.values())
    moved = [n for n, p in model.backbone.named_parameters() if not torch.equal(before[n], p)]
    assert len(moved) > 0.5 * len(before)


@pytest.mark.parametrize('path', DEMO, ids=rel)
def test_demo_config_trains_through_the_runner_under_bf16_autocast(path, shapes_root, tmp_path):
    """The demo pipeline, dataset and schedule, with --amp on CPU (bf16 autocast): finite losses, every block."""
    options = (seg_demo_cfg_options if _is_seg(path) else demo_cfg_options)(shapes_root, max_iters=2)
    cfg = load_config(path, options, work_dir=str(tmp_path))
    enable_amp(cfg)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 2
    assert type(runner.optim_wrapper).__name__ == 'CPUAutocastOptimWrapper'
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(v)) for v in losses)
