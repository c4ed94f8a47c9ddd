"""Every config builds its model and trains one step: real configs on a synthetic batch (their full-size models,
small images), demo configs through mmengine's Runner on generated data (their pipeline, dataset and schedule)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, init_default_scope

import mmlocalrel  # noqa: F401
from mmlocalrel.engine import build_runner, enable_amp, load_config
from tests.conftest import demo_cfg_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALL = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p)
DEMO = [p for p in ALL if osp.sep + 'demo' + osp.sep in p]
REAL = [p for p in ALL if p not in DEMO]
rel = lambda p: osp.relpath(p, ROOT)  # noqa: E731


def test_configs_are_found():
    assert any(p.endswith('mask_rcnn_r50_gc.py') for p in REAL)
    assert any(p.endswith('mask_rcnn_r50_gc_shapes.py') for p in DEMO)


@pytest.mark.parametrize('path', REAL, ids=rel)
def test_every_real_config_has_a_demo_variant(path):
    name = osp.splitext(osp.basename(path))[0]
    assert any(osp.basename(d).startswith(name + '_') for d in DEMO), f'no configs/demo/{name}_*.py'


def _synthetic_batch(cfg, model):
    from mmdet.testing import demo_mm_inputs
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                            num_classes=num_classes, with_mask=True)
    return model.data_preprocessor(packed, True)


@pytest.mark.parametrize('path', REAL, ids=rel)
def test_real_config_builds_and_trains_a_step(path):
    cfg = Config.fromfile(path)
    assert 'mmlocalrel' in cfg.custom_imports['imports'] and cfg.custom_imports.get('allow_failed_imports') is False
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.init_cfg = None  # no pretrained weights can be downloaded here
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
    options = demo_cfg_options(shapes_root, max_iters=2)
    cfg = load_config(path, options, work_dir=str(tmp_path))
    enable_amp(cfg)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 2
    assert type(runner.optim_wrapper).__name__ == 'CPUAutocastOptimWrapper'
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(v)) for v in losses)
