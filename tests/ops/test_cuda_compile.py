"""Every CUDA kernel file compiles with nvcc (compile only), where nvcc is present.

This machine's torch is a CPU build: its headers lack the generated c10/cuda/impl/cuda_cmake_macros.h, so a shim
provides it; kernels include c10/cuda headers only (not ATen/cuda/CUDAContext.h, which pulls cuSPARSE/cuBLAS).
"""
import glob
import os
import shutil
import subprocess

import pytest
import torch
from torch.utils.cpp_extension import include_paths

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CU_FILES = sorted(glob.glob(os.path.join(ROOT, 'ops', 'cuda', '*.cu')))
NVCC = shutil.which('nvcc')


def test_there_are_cuda_kernels():
    assert CU_FILES, 'ops/cuda/ holds no .cu file'


@pytest.mark.skipif(NVCC is None, reason='nvcc not installed')  # compile check only; no GPU needed
@pytest.mark.parametrize('source', CU_FILES, ids=os.path.basename)
def test_cuda_kernel_compiles(source, tmp_path):
    shim = tmp_path / 'shim' / 'c10' / 'cuda' / 'impl'
    shim.mkdir(parents=True)
    (shim / 'cuda_cmake_macros.h').write_text('#pragma once\n')
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    cmd = [NVCC, '-std=c++17', '-c', source, '-o', str(tmp_path / 'kernel.o'), '-arch=sm_80',
           '--expt-relaxed-constexpr', f'-D_GLIBCXX_USE_CXX11_ABI={abi}', '-DWITH_CUDA',
           '-I', str(tmp_path / 'shim'), '-I', os.path.join(ROOT, 'ops')]
    for path in include_paths():
        cmd += ['-I', path]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f'nvcc failed on {source}:\n{result.stderr[-4000:]}'
    assert (tmp_path / 'kernel.o').stat().st_size > 0
