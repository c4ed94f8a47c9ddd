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
