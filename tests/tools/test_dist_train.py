"""--launcher pytorch on a CPU-only machine: two gloo processes train the demo config and end with equal weights."""
import math
import os
import subprocess
import sys

import torch

from tests.conftest import demo_options

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_two_process_gloo_training_keeps_ranks_identical(shapes_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29731',
           os.path.join(HERE, 'train_and_dump.py'), 'configs/demo/mask_rcnn_r50_gc_shapes.py',
           '--launcher', 'pytorch', '--work-dir', str(tmp_path)] + demo_options(shapes_root, max_iters=3)
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in (0, 1)]
    assert all(r['world_size'] == 2 for r in ranks)
    for name, value in ranks[0]['state_dict'].items():
        torch.testing.assert_close(ranks[1]['state_dict'][name], value, rtol=0, atol=0, msg=name)
    assert all(math.isfinite(x) for r in ranks for x in r['losses']) and len(ranks[0]['losses']) == 3
    # the ranks saw different data (DefaultSampler shards it), so equal weights come from gradient all-reduce
    assert ranks[0]['losses'] != ranks[1]['losses']
