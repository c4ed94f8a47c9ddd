"""Resume that holds: a run killed after N iterations and resumed with --resume ends with exactly the weights of an
uninterrupted run with the same seed (deterministic CPU)."""
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import demo_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'configs/demo/mask_rcnn_r50_gc_shapes.py')
ITERS = 7  # 8 images, batch 2: the resumed run replays past an epoch boundary


def _train(work_dir, shapes_root, *extra, config=CONFIG):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    cmd = [sys.executable, os.path.join(ROOT, 'tools/train.py'), config, '--work-dir', str(work_dir), *extra
           ] + demo_options(shapes_root, max_iters=ITERS, **{'default_hooks.checkpoint.interval': 1})
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('kill_after', [3, 5])
def test_killed_and_resumed_run_equals_uninterrupted_run(shapes_root, tmp_path, kill_after):
    whole = _train(tmp_path / 'whole', shapes_root)
    assert whole.returncode == 0, whole.stderr[-3000:]

    killing = tmp_path / 'killed.py'
    killing.write_text(f"_base_ = '{CONFIG}'\n"
                       "custom_imports = dict(imports=['mmlocalrel', 'tests.tools.kill_hook'], "
                       "allow_failed_imports=False)\n"
                       f"custom_hooks = [dict(type='KillAfterIterHook', iteration={kill_after})]\n")
    killed = _train(tmp_path / 'resumed', shapes_root, config=str(killing))
    assert killed.returncode == -9, 'the first run should have been killed'
    assert not (tmp_path / 'resumed' / f'iter_{ITERS}.pth').exists()
    assert (tmp_path / 'resumed' / f'iter_{kill_after}.pth').exists()

    resumed = _train(tmp_path / 'resumed', shapes_root, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resumed epoch: ' in resumed.stdout + resumed.stderr

    expected = torch.load(tmp_path / 'whole' / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    got = torch.load(tmp_path / 'resumed' / f'iter_{ITERS}.pth', map_location='cpu', weights_only=False)
    assert got['meta']['iter'] == expected['meta']['iter'] == ITERS
    for name, value in expected['state_dict'].items():
        torch.testing.assert_close(got['state_dict'][name], value, rtol=0, atol=0, msg=name)
