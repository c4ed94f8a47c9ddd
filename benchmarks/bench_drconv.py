"""region_conv (DRConv) vs its all-regions reference and a plain convolution, measured in the same run.

Issue 5's setting: fp32 CPU, B=2, C_in=C_out=64, 56x56, k=3, m=8. Targets: forward >= 4x and forward+backward
>= 2x faster than the all-regions reference (m convolutions, then select), forward <= 1.5x a plain nn.Conv2d of
the same shape. Forward+backward computes every gradient a training step needs: x, kernels and the guide's
surrogate (a second row leaves the guide out). Masks: uniformly random (worst case for locality) and the argmax of
a guided 3x3 conv of the input (what the layer feeds the op).

    python benchmarks/bench_drconv.py [--threads N] [--repeat R] [--size B C HW m] [--clock {wall,cpu}]

--clock cpu times the process's CPU time instead of wall time (use with --threads 1): on a machine shared with
other jobs it counts only this process's work, which keeps the ratios meaningful when wall times are not.
"""
import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import peak_memory_mb, print_table, time_ms  # noqa: E402
from mmlocalrel.ops import dispatch  # noqa: E402
from mmlocalrel.ops.region_conv import RegionConvFunction, region_conv_reference  # noqa: E402

GEOMETRY = ([1, 1], [1, 1], [1, 1])  # stride, padding, dilation of a 3x3 'same' convolution


def cpu_time_ms(fn, warmup=2, repeat=10):
    """Median process CPU time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append((time.process_time() - t0) * 1e3)
    return statistics.median(times)


def make_inputs(B, C, HW, m, k=3):
    torch.manual_seed(0)
    x = torch.randn(B, C, HW, HW)
    kernels = torch.randn(B, m, C, C, k, k) / (C * k * k)**0.5
    conv = torch.nn.Conv2d(C, C, k, padding=1, bias=False)
    guide_conv = torch.nn.Conv2d(C, m, k, padding=1)
    with torch.no_grad():
        masks = {'random': torch.randint(0, m, (B, HW, HW)), 'guided': guide_conv(x).argmax(1)}
    guide = torch.randn(B, m, HW, HW).softmax(1)
    return x, kernels, conv, masks, guide


def passes(x, kernels, conv, mask, guide):
    """The timed functions, by name."""

    def leaves():
        return x.clone().requires_grad_(), kernels.clone().requires_grad_(), guide.clone().requires_grad_()

    def ref_fwd():
        with torch.no_grad():
            return region_conv_reference(x, kernels, mask, 1, 1, 1)

    def ker_fwd():
        with torch.no_grad():
            return RegionConvFunction.apply(x, kernels, mask, None, *GEOMETRY)

    def conv_fwd():
        with torch.no_grad():
            return conv(x)

    def ref_fwd_bwd():
        xx, kk, gg = leaves()
        region_conv_reference(xx, kk, mask, 1, 1, 1, guide=gg).sum().backward()

    def ker_fwd_bwd():
        xx, kk, gg = leaves()
        RegionConvFunction.apply(xx, kk, mask, gg, *GEOMETRY).sum().backward()

    def ref_fwd_bwd_noguide():
        xx, kk, _ = leaves()
        region_conv_reference(xx, kk, mask, 1, 1, 1).sum().backward()

    def ker_fwd_bwd_noguide():
        xx, kk, _ = leaves()
        RegionConvFunction.apply(xx, kk, mask, None, *GEOMETRY).sum().backward()

    def conv_fwd_bwd():
        conv(x.clone().requires_grad_()).sum().backward()

    return {fn.__name__: fn for fn in (ref_fwd, ker_fwd, conv_fwd, ref_fwd_bwd, ker_fwd_bwd, ref_fwd_bwd_noguide,
                                       ker_fwd_bwd_noguide, conv_fwd_bwd)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch default)')
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--size', type=int, nargs=4, default=(2, 64, 56, 8), metavar=('B', 'C', 'HW', 'm'))
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not dispatch.has_kernel('region_conv_forward', 'cpu'):
        sys.exit('mmlocalrel._ext is not built with region_conv: run `python setup.py build_ext --inplace`')

    timer = time_ms if args.clock == 'wall' else cpu_time_ms
    B, C, HW, m = args.size
    x, kernels, conv, masks, guide = make_inputs(B, C, HW, m)
    print(f'fp32 CPU, threads={torch.get_num_threads()}, B={B}, C_in=C_out={C}, {HW}x{HW}, k=3, m={m}; '
          f'median {args.clock} time of {args.repeat} runs')
    rows = []
    for name, mask in masks.items():
        fns = passes(x, kernels, conv, mask, guide)
        t = {key: timer(fn, repeat=args.repeat) for key, fn in fns.items()}
        mem_ref, mem_ker = peak_memory_mb(fns['ref_fwd_bwd']), peak_memory_mb(fns['ker_fwd_bwd'])
        rows.append([f'{name}: forward', f'{t["ref_fwd"]:.1f}', f'{t["ker_fwd"]:.1f}', f'{t["conv_fwd"]:.1f}',
                     f'{t["ref_fwd"] / t["ker_fwd"]:.2f}x (>= 4)', f'{t["ker_fwd"] / t["conv_fwd"]:.2f} (<= 1.5)', ''])
        rows.append([f'{name}: fwd+bwd (x, kernels, guide)', f'{t["ref_fwd_bwd"]:.1f}', f'{t["ker_fwd_bwd"]:.1f}',
                     f'{t["conv_fwd_bwd"]:.1f}', f'{t["ref_fwd_bwd"] / t["ker_fwd_bwd"]:.2f}x (>= 2)',
                     f'{t["ker_fwd_bwd"] / t["conv_fwd_bwd"]:.2f}', f'{mem_ref:.0f} / {mem_ker:.0f}'])
        rows.append([f'{name}: fwd+bwd (x, kernels)', f'{t["ref_fwd_bwd_noguide"]:.1f}',
                     f'{t["ker_fwd_bwd_noguide"]:.1f}', f'{t["conv_fwd_bwd"]:.1f}',
                     f'{t["ref_fwd_bwd_noguide"] / t["ker_fwd_bwd_noguide"]:.2f}x',
                     f'{t["ker_fwd_bwd_noguide"] / t["conv_fwd_bwd"]:.2f}', ''])
    print_table('region_conv (ms)', ['pass', 'reference', 'region_conv', 'nn.Conv2d', 'reference / region_conv',
                                     'region_conv / nn.Conv2d', 'peak MiB ref / ours'], rows)


if __name__ == '__main__':
    main()
