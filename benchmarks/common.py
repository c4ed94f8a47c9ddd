"""Timing and peak-memory helpers shared by the benchmarks (each benchmark compares against a reference measured
in the same run and prints ratios)."""
import ctypes
import gc
import re
import statistics
import time

import torch


def time_ms(fn, warmup=2, repeat=10):
    """Median wall time of ``fn()`` in milliseconds (CUDA-synchronised when CUDA is in use)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _status_kb(field):
    with open('/proc/self/status') as f:
        return int(re.search(rf'^{field}:\s+(\d+) kB', f.read(), re.M).group(1))


def _mmap_large_allocations():
    # Large blocks from mmap are returned to the OS when freed, so resident memory follows live tensors;
    # a fixed threshold stops glibc from raising it (and keeping freed blocks) after the first large free.
    libc = ctypes.CDLL('libc.so.6')
    M_MMAP_THRESHOLD = -3
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 16)


_mmap_large_allocations()  # at import, before a benchmark allocates anything


def peak_memory_mb(fn, device='cpu'):
    """Peak memory (MiB) that ``fn()`` adds above what was live before it ran (inputs excluded).

    CPU: the process's resident high-water mark (VmHWM), reset through /proc/self/clear_refs just before, with large
    allocations served by mmap so freed memory leaves the process. CUDA: torch.cuda's peak counter.
    """
    if device != 'cpu':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    gc.collect()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident size
    base = _status_kb('VmRSS')
    fn()
    return (_status_kb('VmHWM') - base) / 1024


def print_table(title, header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(cells, widths)) + ' |'  # noqa: E731
    print(f'\n{title}')
    print(line(header))
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for row in rows:
        print(line(row))
