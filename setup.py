"""mmlocalrel: attention and dynamic blocks (GC, SE, Non-local, DRConv, LIP, Local Relation) for mmdet/mmseg.

Builds ``mmlocalrel._ext`` from ``ops/``: the C++ CPU kernels always; the CUDA kernels as well when torch has CUDA
(or FORCE_CUDA=1). Ops register themselves with torch's dispatcher (``torch.ops.mmlocalrel.*``), so one schema
serves every device and the extension module itself is only the thing that loads them.
"""
import glob
import os
import re

from setuptools import find_packages, setup


def read_version():
    with open(os.path.join('mmlocalrel', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def ext_modules():
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    root = os.path.dirname(os.path.abspath(__file__))
    sources = sorted(glob.glob('ops/*.cpp') + glob.glob('ops/cpu/*.cpp'))
    cxx = ['-O3', '-fopenmp', '-std=c++17']
    kwargs = dict(include_dirs=[os.path.join(root, 'ops')], extra_link_args=['-fopenmp'])
    with_cuda = os.getenv('FORCE_CUDA', '0') == '1' or (torch.cuda.is_available() and CUDA_HOME is not None)
    if with_cuda:
        sources += sorted(glob.glob('ops/cuda/*.cu'))
        return [CUDAExtension('mmlocalrel._ext', sources, define_macros=[('WITH_CUDA', None)],
                              extra_compile_args={'cxx': cxx, 'nvcc': ['-O3', '--use_fast_math']}, **kwargs)]
    return [CppExtension('mmlocalrel._ext', sources, extra_compile_args={'cxx': cxx}, **kwargs)]


def cmdclass():
    from torch.utils.cpp_extension import BuildExtension
    return {'build_ext': BuildExtension.with_options(use_ninja=True)}


setup(
    name='mmlocalrel',
    version=read_version(),
    description='GC, SE, Non-local, DRConv, LIP and Local Relation blocks for OpenMMLab detection/segmentation',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'benchmarks')),
    python_requires='>=3.9',
    ext_modules=ext_modules(),
    cmdclass=cmdclass(),
    zip_safe=False,
)
