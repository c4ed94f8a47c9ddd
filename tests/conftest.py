import pytest
import torch


def pytest_collection_modifyitems(config, items):
    # Only tests that need a GPU are ever skipped.
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A small generated shapes dataset (64-px images), made once per test process."""
    from mmlocalrel.datasets import generate_shapes
    return generate_shapes(str(tmp_path_factory.mktemp('shapes')), num_train=8, num_val=4, size=64, seed=1)


def demo_cfg_options(root, max_iters=2, **extra):
    """Config overrides that point a demo Mask R-CNN config at ``root`` and shorten it."""
    root = root.rstrip('/') + '/'
    options = {
        'train_dataloader.dataset.data_root': root,
        'train_dataloader.batch_size': 2,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 10_000,
        'default_hooks.checkpoint.interval': max_iters,
        'default_hooks.checkpoint.max_keep_ckpts': 3,
        'default_hooks.logger.interval': 1,
    }
    options.update(extra)
    return options


def demo_options(root, max_iters=2, **extra):
    """The same as tools' --cfg-options arguments."""
    return ['--cfg-options'] + [f'{k}={v}' for k, v in demo_cfg_options(root, max_iters, **extra).items()]


def seg_demo_cfg_options(root, max_iters=2, **extra):
    """Config overrides that point a demo segmentation config (configs/demo/seg/) at ``root`` and shorten it."""
    root = root.rstrip('/') + '/'
    options = {
        'train_dataloader.dataset.data_root': root,
        'train_dataloader.batch_size': 2,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 10_000,
        'default_hooks.checkpoint.interval': max_iters,
        'default_hooks.checkpoint.max_keep_ckpts': 3,
        'default_hooks.logger.interval': 1,
    }
    options.update(extra)
    return options


def seg_demo_options(root, max_iters=2, **extra):
    """The same as tools' --cfg-options arguments."""
    return ['--cfg-options'] + [f'{k}={v}' for k, v in seg_demo_cfg_options(root, max_iters, **extra).items()]
