"""NonLocalBlock vs mmcv's NonLocal2d (same weights): one forward + backward, fp32, peak memory and time.

Defaults are the issue's setting: CPU, B=2, C=256, a 64x128 map (N = 8192 positions, so mmcv's pairwise matrix is
2 x 8192 x 8192 fp32 = 512 MiB, plus its softmax and gradient). 'concatenation' runs on a smaller map: mmcv builds
(B, 2C', N, N) pair features (137 GB at 64x128); and since mmcv's concatenation cannot run backward (it divides its
in-place ReLU's output in place), its reference there is the same explicit form with an out-of-place division.

    python benchmarks/bench_nonlocal.py [--modes embedded_gaussian dot_product] [--repeat 3]
"""
import argparse
import os
import sys

import torch
from mmcv.cnn.bricks.non_local import NonLocal2d

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_memory_mb, print_table, time_ms  # noqa: E402

from mmlocalrel.models.layers import NonLocalBlock  # noqa: E402
from mmlocalrel.models.layers.non_local import MODES  # noqa: E402


def _trainable_concatenation(ref):
    def concatenation(theta_x, phi_x):
        h, w = theta_x.size(2), phi_x.size(3)
        pairs = torch.cat([theta_x.repeat(1, 1, 1, w), phi_x.repeat(1, 1, h, 1)], dim=1)
        return ref.concat_project(pairs).view(theta_x.size(0), h, w) / w

    ref.concatenation = concatenation


def build(mode, channels):
    ref = NonLocal2d(channels, mode=mode)
    with torch.no_grad():  # a trained block: non-zero output conv
        ref.conv_out.conv.weight.normal_(0, 0.01)
    if mode == 'concatenation':
        _trainable_concatenation(ref)
    ours = NonLocalBlock(channels, mode=mode)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def step(module, x):
    def run():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--size', type=int, nargs=2, default=(64, 128), metavar=('H', 'W'))
    parser.add_argument('--concat-size', type=int, nargs=2, default=(16, 32), metavar=('H', 'W'))
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(0)
    rows = []
    for mode in args.modes:
        h, w = args.concat_size if mode == 'concatenation' else args.size
        ref, ours = build(mode, args.channels)
        x = torch.randn(args.batch, args.channels, h, w, requires_grad=True)
        with torch.no_grad():
            err = (ours(x) - ref(x)).abs().max().item()
        mem = [peak_memory_mb(step(m, x)) for m in (ref, ours)]
        ms = [time_ms(step(m, x), warmup=args.warmup, repeat=args.repeat) for m in (ref, ours)]
        rows.append((mode, f'{h}x{w}', f'{ms[0]:.0f}', f'{ms[1]:.0f}', f'{ms[1] / ms[0]:.2f}x', f'{mem[0]:.1f}',
                     f'{mem[1]:.1f}', f'{mem[1] / mem[0]:.3g}x', f'{err:.1e}'))
        del ref, ours, x
    print_table(
        f'Non-local block, forward + backward, fp32, CPU '
        f'({torch.get_num_threads()} threads), B={args.batch}, C={args.channels}, torch {torch.__version__}',
        ('mode', 'map', 'mmcv ms', 'ours ms', 'time ratio', 'mmcv MiB', 'ours MiB', 'memory ratio', 'max abs diff'),
        rows)


if __name__ == '__main__':
    main()
