"""``--launcher pytorch|slurm`` on machines without CUDA.

mmengine's launchers call ``torch.cuda.set_device`` and its Runner wraps the model in DDP with
``device_ids=[LOCAL_RANK]``: both fail without a GPU. On such a machine we initialise a gloo process group before the
Runner is built (the Runner then skips its own init_dist) and wrap the model without device ids (CPU DDP).
With CUDA present nothing changes: mmengine's own path runs.
"""
import os
import subprocess

import torch
import torch.distributed as dist


def _slurm_env(port):
    # as mmengine's slurm launcher: rank and world size from SLURM, the first node of the job as master
    os.environ.setdefault('MASTER_PORT', str(port))
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']


def setup_cpu_distributed(cfg):
    """Prepare ``cfg`` (launcher already set) for a CPU-only distributed run; returns True if it did anything."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return False
    if cfg.launcher == 'slurm':
        _slurm_env(cfg.env_cfg.get('dist_cfg', {}).get('port', 29500))
    elif cfg.launcher != 'pytorch':
        raise ValueError(f"--launcher {cfg.launcher} needs CUDA here; on CPU use 'pytorch' (torchrun) or 'slurm'")
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'--launcher {cfg.launcher}: environment variable {var} is not set '
                               '(start the job with tools/dist_train.sh or torchrun)')
    if not dist.is_initialized():
        dist.init_process_group('gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None  # CPU DDP
    cfg.model_wrapper_cfg = wrapper
    return True
