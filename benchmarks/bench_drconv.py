"""region_conv (DRConv) vs its all-regions reference and a plain convolution, measured in the same run.

Issue 5's setting: fp32 CPU, B=2, C_in=C_out=64, 56x56, k=3, m=8. Targets: forward >= 4x and forward+backward
>= 2x faster than the all-regions reference (m convolutions, then select), forward <= 1.5x a plain nn.Conv2d of
the same shape. Forward+backward computes every gradient a training step needs: x, kernels and the guide's
surrogate. Masks: uniformly random (worst case for locality) and the argmax of a guided 3x3 conv (what the layer
feeds the op).

    python benchmarks/bench_drconv.py [--threads N] [--repeat R] [--size B C HW m]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import peak_memory_mb, print_table, time_ms  # noqa: E402
from mmlocalrel.ops import dispatch  # noqa: E402
from mmlocalrel.ops.region_conv import RegionConvFunction, region_conv_reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--size', type=int, nargs=4, default=(2, 64, 56, 8), metavar=('B', 'C', 'HW', 'm'))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not dispatch.has_kernel('region_conv_forward', 'cpu'):
        sys.exit('mmlocalrel._ext is not built with region_conv: run `python setup.py build_ext --inplace`')
    B, C, HW, m = args.size
    k = 3
    torch.manual_seed(0)
    x = torch.randn(B, C, HW, HW)
    kernels = torch.randn(B, m, C, C, k, k) / (C * k * k)**0.5
    conv = torch.nn.Conv2d(C, C, k, padding=1, bias=False)
    guide_conv = torch.nn.Conv2d(C, m, k, padding=1)
    masks = {
        'random': torch.randint(0, m, (B, HW, HW)),
        'guided': guide_conv(x).argmax(1).detach(),
    }
    guide = torch.randn(B, m, HW, HW).softmax(1)
    geometry = ([1, 1], [1, 1], [1, 1])
    print(f'fp32 CPU, threads={torch.get_num_threads()}, B={B}, C_in=C_out={C}, {HW}x{HW}, k={k}, m={m}; '
          f'median of {args.repeat} runs')

    rows = []
    for name, mask in masks.items():
        def leaves():
            return (x.clone().requires_grad_(), kernels.clone().requires_grad_(), guide.clone().requires_grad_())

        def ref_fwd():
            with torch.no_grad():
                return region_conv_reference(x, kernels, mask, 1, 1, 1)

        def ker_fwd():
            with torch.no_grad():
                return RegionConvFunction.apply(x, kernels, mask, None, *geometry)

        def conv_fwd():
            with torch.no_grad():
                return conv(x)

        def ref_fwd_bwd():
            xx, kk, gg = leaves()
            region_conv_reference(xx, kk, mask, 1, 1, 1, guide=gg).sum().backward()

        def ref_fwd_bwd_noguide():
            xx, kk, _ = leaves()
            region_conv_reference(xx, kk, mask, 1, 1, 1).sum().backward()

        def ker_fwd_bwd():
            xx, kk, gg = leaves()
            RegionConvFunction.apply(xx, kk, mask, gg, *geometry).sum().backward()

        def ker_fwd_bwd_noguide():
            xx, kk, _ = leaves()
            RegionConvFunction.apply(xx, kk, mask, None, *geometry).sum().backward()

        def conv_fwd_bwd():
            xx = x.clone().requires_grad_()
            conv(xx).sum().backward()

        # Memory before timing (freed blocks of earlier runs would stay in malloc's heap and hide the peaks), each
        # measured twice and the second kept (the first call also allocates one-off oneDNN state).
        mem_ref = [peak_memory_mb(ref_fwd_bwd) for _ in range(2)][-1]
        mem_ker = [peak_memory_mb(ker_fwd_bwd) for _ in range(2)][-1]
        fns = (ref_fwd, ker_fwd, conv_fwd, ref_fwd_bwd, ker_fwd_bwd, ref_fwd_bwd_noguide, ker_fwd_bwd_noguide,
               conv_fwd_bwd)
        t = {fn.__name__: time_ms(fn, repeat=args.repeat) for fn in fns}
        rows.append([f'{name}: forward', f'{t["ref_fwd"]:.1f}', f'{t["ker_fwd"]:.1f}', f'{t["conv_fwd"]:.1f}',
                     f'{t["ref_fwd"] / t["ker_fwd"]:.2f}x (>= 4)', f'{t["ker_fwd"] / t["conv_fwd"]:.2f} (<= 1.5)', ''])
        rows.append([f'{name}: fwd+bwd (x, kernels, guide)', f'{t["ref_fwd_bwd"]:.1f}', f'{t["ker_fwd_bwd"]:.1f}',
                     f'{t["conv_fwd_bwd"]:.1f}', f'{t["ref_fwd_bwd"] / t["ker_fwd_bwd"]:.2f}x (>= 2)',
                     f'{t["ker_fwd_bwd"] / t["conv_fwd_bwd"]:.2f}', f'{mem_ref:.0f} / {mem_ker:.0f}'])
        rows.append([f'{name}: fwd+bwd (x, kernels only)', f'{t["ref_fwd_bwd_noguide"]:.1f}',
                     f'{t["ker_fwd_bwd_noguide"]:.1f}', f'{t["conv_fwd_bwd"]:.1f}',
                     f'{t["ref_fwd_bwd_noguide"] / t["ker_fwd_bwd_noguide"]:.2f}x',
                     f'{t["ker_fwd_bwd_noguide"] / t["conv_fwd_bwd"]:.2f}', ''])
    print_table('region_conv (ms)', ['pass', 'reference', 'region_conv', 'nn.Conv2d', 'reference / region_conv',
                                     'region_conv / nn.Conv2d', 'peak MiB ref / ours'], rows)


if __name__ == '__main__':
    main()
