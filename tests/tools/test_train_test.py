"""tools/train.py and tools/test.py on the demo config: train, test from a checkpoint, --resume and load_from, all on
torch >= 2.6 where mmengine 0.10.7 cannot read its own checkpoints without mmlocalrel's loader patch."""
import os.path as osp
import pickle

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from mmlocalrel.engine import build_runner, load_config
from tests.conftest import demo_cfg_options, demo_options

CONFIG = 'configs/demo/mask_rcnn_r50_gc_shapes.py'


@pytest.fixture(scope='module')
def trained(shapes_root, train_tool, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('train'))
    runner = train_tool.main([CONFIG, '--work-dir', work_dir] + demo_options(shapes_root, max_iters=2))
    return work_dir, runner


def test_train_writes_a_checkpoint_holding_more_than_tensors(trained):
    work_dir, runner = trained
    assert runner.iter == 2
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    # torch >= 2.6 reads weights only by default: mmengine's checkpoint (message hub, numpy...) is refused
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, map_location='cpu')
    # ... and so would mmengine's own local loader, without the wrapper mmlocalrel puts around it
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader._schemes[''].__wrapped__(ckpt, map_location='cpu')


def test_test_tool_evaluates_the_checkpoint_with_coco_metrics(trained, shapes_root, test_tool, tmp_path):
    work_dir, runner = trained
    out = str(tmp_path / 'results.pkl')
    metrics = test_tool.main([CONFIG, osp.join(work_dir, 'iter_2.pth'), '--work-dir', str(tmp_path), '--out', out]
                             + demo_options(shapes_root))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in metrics
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4 and 'pred_instances' in results[0]


def test_test_tool_names_a_missing_checkpoint(test_tool, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        test_tool.main([CONFIG, str(tmp_path / 'missing.pth')])


def test_resume_restores_weights_optimizer_and_iteration(trained, shapes_root, train_tool, tmp_path):
    work_dir, _ = trained
    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu', weights_only=False)
    new_dir = str(tmp_path)
    runner = train_tool.main([CONFIG, '--work-dir', new_dir, '--resume', osp.join(work_dir, 'iter_2.pth')]
                             + demo_options(shapes_root, max_iters=2))
    # max_iters equals the checkpoint's iteration: resuming restores everything and trains nothing more
    assert runner.iter == 2
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, ckpt['state_dict'][name], msg=name)
    momentum = runner.optim_wrapper.optimizer.state_dict()['state']
    assert momentum and all(
        torch.equal(momentum[k]['momentum_buffer'], v['momentum_buffer']) for k, v in ckpt['optimizer']['state'].items())

    # and training goes on from there
    runner = train_tool.main([CONFIG, '--work-dir', new_dir, '--resume'] + demo_options(shapes_root, max_iters=3))
    assert runner.iter == 3 and osp.isfile(osp.join(new_dir, 'iter_3.pth'))


def test_load_from_loads_the_weights(trained, shapes_root, tmp_path):
    work_dir, _ = trained
    ckpt_path = osp.join(work_dir, 'iter_2.pth')
    options = demo_cfg_options(shapes_root)
    options['load_from'] = ckpt_path
    cfg = load_config(CONFIG, options, work_dir=str(tmp_path))
    runner = build_runner(cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.load_or_resume()
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)['state_dict']
    changed = 0
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, ckpt[name], msg=name)
        changed += not torch.equal(before[name], value)
    assert changed > 0  # a fresh model differs from the trained one, so the load did something
