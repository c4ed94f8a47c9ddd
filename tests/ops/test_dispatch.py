import warnings

import pytest
import torch

from mmlocalrel.ops import dispatch


def test_extension_is_built_with_cpu_kernels():
    ext, err = dispatch.load_extension()
    assert ext is not None, err
    assert dispatch.extension_status() in ('cpu', 'cpu+cuda')


def test_unknown_op_has_no_kernel():
    assert not dispatch.has_kernel('no_such_op', 'cpu')


def test_reference_mode_never_uses_kernels(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'reference')
    assert dispatch.use_kernel('no_such_op', torch.zeros(1)) is False


def test_ext_mode_refuses_the_fallback(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'ext')
    with pytest.raises(RuntimeError, match="no compiled kernel for device 'cpu'.*MMLOCALREL_OPS=ext"):
        dispatch.use_kernel('no_such_op', torch.zeros(1))


def test_auto_mode_falls_back_with_one_loud_warning(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'auto')
    dispatch._warn_once.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert dispatch.use_kernel('no_such_op', torch.zeros(1)) is False
        assert dispatch.use_kernel('no_such_op', torch.zeros(1)) is False
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and 'pure-PyTorch reference' in messages[0]


def test_bad_mode_is_named(monkeypatch):
    monkeypatch.setenv('MMLOCALREL_OPS', 'fast')
    with pytest.raises(ValueError, match=r"MMLOCALREL_OPS must be one of \('auto', 'ext', 'reference'\)"):
        dispatch.use_kernel('no_such_op', torch.zeros(1))
