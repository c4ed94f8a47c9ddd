"""LIP pooling on CPU: the fused kernel against the composite formula avg_pool(x e^l) / avg_pool(e^l), measured in
the same run (fp32, B=8, C=64, 112x112, kernel 3, stride 2, padding 1; forward + backward).

    python benchmarks/bench_lip.py [--batch 8 --channels 64 --size 112 --repeat 10 --threads N]

Targets (issue 4): fused >= 2x faster and <= 0.5x the peak memory of the composite, forward + backward. Peak
memory counts what a call adds above the inputs (the gradients of x and logit included) and is measured before any
other run has left freed blocks in the allocator.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import peak_memory_mb, print_table, time_ms  # noqa: E402
from mmlocalrel.ops import dispatch, lip2d, lip2d_reference  # noqa: E402


def composite(x, logit, k=3, s=2, p=1):
    """The paper's formula in PyTorch ops (the authors' lip2d)."""
    w = logit.exp()
    return F.avg_pool2d(x * w, k, s, p) / F.avg_pool2d(w, k, s, p)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--channels', type=int, default=64)
    parser.add_argument('--size', type=int, default=112)
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None, help="torch's intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not dispatch.has_kernel('lip2d_forward', 'cpu'):
        sys.exit(f'the compiled kernel is missing: mmlocalrel._ext {dispatch.extension_status()}')

    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.channels, args.size, args.size)
    x = torch.randn(shape, generator=gen).requires_grad_()
    logit = (torch.rand(shape, generator=gen) * 12).requires_grad_()  # the paper's 12*sigmoid range
    out_size = (args.size + 2 - 3) // 2 + 1
    grad = torch.randn(args.batch, args.channels, out_size, out_size, generator=gen)
    methods = [('composite avg_pool(x e^l) / avg_pool(e^l)', composite),
               ('lip2d_reference (PyTorch, window max)', lip2d_reference),
               ('lip2d (fused kernel)', lip2d)]

    def train_step(fn):
        return lambda: torch.autograd.grad(fn(x, logit), (x, logit), grad)

    def inference(fn):

        def run():
            with torch.no_grad():
                fn(x, logit)

        return run

    tables = (('forward + backward', train_step), ('forward only (no_grad)', inference))
    # Memory first, before anything else has run: blocks freed by earlier runs would be reused without raising the
    # resident high-water mark.
    memory = [[peak_memory_mb(wrap(fn)) for _, fn in methods] for _, wrap in tables]
    with torch.no_grad():
        for _, fn in methods[1:]:
            torch.testing.assert_close(fn(x, logit), composite(x, logit), rtol=1e-4, atol=1e-4)
    for (title, wrap), mem in zip(tables, memory):
        times = [time_ms(wrap(fn), warmup=2, repeat=args.repeat) for _, fn in methods]
        rows = [(name, f'{t:.1f}', f'{times[0] / t:.2f}x', f'{m:.1f}', f'{m / mem[0]:.2f}x')
                for (name, _), t, m in zip(methods, times, mem)]
        print_table(
            f'LIP {title}: fp32 CPU, {torch.get_num_threads()} threads, x/logit {tuple(shape)}, k3 s2 p1',
            ['method', 'time (ms)', 'speed-up', 'peak (MiB)', 'memory'], rows)
        if wrap is train_step:
            speed, ratio = times[0] / times[-1], mem[-1] / mem[0]
            print(f'targets: >= 2x faster: {speed:.2f}x ({"met" if speed >= 2 else "NOT met"}); '
                  f'<= 0.5x peak memory: {ratio:.2f}x ({"met" if ratio <= 0.5 else "NOT met"})')


if __name__ == '__main__':
    main()
