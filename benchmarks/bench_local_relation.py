"""Fused local relation kernels vs the unfold reference (the same run, the same inputs).

Default problem (issue 6): fp32 on CPU, B=2, C=64, m=8 (G=8), 56x56, k=7, stride 1, forward + backward.
Targets: >= 3x faster and <= 0.1x the peak memory of the reference.

    python benchmarks/bench_local_relation.py [--device cpu|cuda] [--threads N] [--size 56] [--repeat 10]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_memory_mb, print_table, time_ms  # noqa: E402

from mmlocalrel.ops import dispatch  # noqa: E402
from mmlocalrel.ops.local_relation import (local_aggregation, local_aggregation_reference, local_relation,  # noqa
                                           local_relation_reference, output_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--m', type=int, default=8, help='channels per group')
    parser.add_argument('--size', type=int, default=56)
    parser.add_argument('--kernel-size', type=int, default=7)
    parser.add_argument('--stride', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not dispatch.has_kernel('local_relation_forward', torch.device(args.device).type):
        sys.exit(f'no compiled local_relation kernel for {args.device} ({dispatch.extension_status()}); build first')

    # peak_memory_mb switches large allocations to mmap; do it before anything is allocated, or blocks freed into
    # glibc's heap by earlier runs would be reused without showing up in the resident high-water mark.
    peak_memory_mb(lambda: None, device=args.device)
    B, C, S, k, s = args.batch, args.channels, args.size, args.kernel_size, args.stride
    G = C // args.m
    So = output_size(S, s)
    gen = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen).to(args.device).requires_grad_()

    query, key, value, geo = rnd(B, G, So, So), rnd(B, G, S, S), rnd(B, C, S, S), rnd(G, k * k)
    weights = torch.softmax(torch.randn(B, G, k * k, So, So, generator=gen), dim=2).to(args.device).requires_grad_()
    grad_out = torch.randn(B, C, So, So, generator=gen).to(args.device)
    relation_inputs = (query, key, value, geo)
    extra = (k, s, 1)

    def relation(fn, backward):
        def run():
            out = fn(*relation_inputs, *extra, 'squared_diff')
            if backward:
                torch.autograd.grad(out, relation_inputs, grad_out)
        return run

    def aggregation(fn, backward):
        def run():
            out = fn(weights, value, *extra)
            if backward:
                torch.autograd.grad(out, (weights, value), grad_out)
        return run

    # Same answer first (a fast wrong kernel is not a result).
    out = local_relation(*relation_inputs, *extra, 'squared_diff')
    ref = local_relation_reference(*relation_inputs, *extra, 'squared_diff')
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)

    cases = [
        ('local_relation fwd+bwd', relation, local_relation, local_relation_reference, True),
        ('local_relation fwd', relation, local_relation, local_relation_reference, False),
        ('local_aggregation fwd+bwd', aggregation, local_aggregation, local_aggregation_reference, True),
    ]
    rows = []
    for name, make, fused, reference, backward in cases:
        make(fused, backward)()  # warm-up: first-call allocations (thread pool, ...) are not the op's
        m_fused = peak_memory_mb(make(fused, backward), device=args.device)
        m_ref = peak_memory_mb(make(reference, backward), device=args.device)
        t_ref = time_ms(make(reference, backward), warmup=1, repeat=args.repeat)
        t_fused = time_ms(make(fused, backward), warmup=1, repeat=args.repeat)
        rows.append((name, f'{t_ref:.1f}', f'{t_fused:.1f}', f'{t_ref / t_fused:.1f}x', f'{m_ref:.1f}',
                     f'{m_fused:.1f}', f'{m_fused / m_ref:.3f}x'))
    title = (f'local relation, {args.device} fp32, B={B}, C={C}, m={args.m}, {S}x{S}, k={k}, stride={s}, '
             f'threads={torch.get_num_threads()} (target for fwd+bwd: >= 3x faster, <= 0.1x peak memory)')
    print_table(title, ('op', 'reference ms', 'fused ms', 'speed-up', 'reference MiB', 'fused MiB', 'memory'), rows)


if __name__ == '__main__':
    main()
