"""Resume that holds: a resumed run continues with the random state the interrupted run had.

mmengine saves weights, optimizer, schedulers and the iteration, but not the random number generators, and on resume
its IterBasedTrainLoop replays the data pipeline for the iterations already done (drawing random augmentations
again) before training goes on. So a resumed run diverges from the uninterrupted one. This hook stores the torch,
numpy and Python generator states in every checkpoint and, on resume, puts them back at the exact point the
interrupted run was at: after the dataloader has been advanced past the iterations already trained, before the next
batch is drawn. tools/train.py adds it to every config.
"""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def rng_states():
    states = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    torch.set_rng_state(states['torch'])
    np.random.set_state(states['numpy'])
    random.setstate(states['python'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


class _RestoreAfter:
    """Wraps the loop's dataloader iterator: after ``skip`` batches (mmengine's replay), restore ``states``."""

    def __init__(self, iterator, skip, states):
        self._iterator, self._left, self._states = iterator, skip, states

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0 and self._states is not None:
            set_rng_states(self._states)
            self._states = None
        self._left -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    priority = 'VERY_HIGH'

    def __init__(self):
        self._resumed_states = None

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_states'] = rng_states()

    def after_load_checkpoint(self, runner, checkpoint):
        if runner._resume and 'rng_states' in checkpoint:
            self._resumed_states = checkpoint['rng_states']

    def before_train(self, runner):
        if self._resumed_states is None:
            return
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # iteration-based: the loop replays `iter` batches first
            loop.dataloader_iterator = _RestoreAfter(loop.dataloader_iterator, loop.iter, self._resumed_states)
        else:  # epoch-based loops start a fresh epoch: restore now
            set_rng_states(self._resumed_states)
        self._resumed_states = None
