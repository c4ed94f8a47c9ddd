"""The demo targets, measured as a user meets them: runs `make demo` and `make demo-seg` (set-up, data, training
from scratch on CPU, evaluation) one after the other, times each whole command, and prints its metrics against the
targets (foundation: bbox and segm AP >= 0.60; segmentation: mIoU >= 0.70; each within 10 minutes on 2 cores).

    python benchmarks/bench_demo.py [--only demo|demo-seg]

Run it on a quiet machine: the time is wall time, and other jobs on the two cores stretch it.
"""
import argparse
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.common import print_table  # noqa: E402

TARGET_MINUTES = 10
# make target -> [(label printed by tools/demo.py, target)]
DEMOS = {
    'demo': [('bbox AP', 0.60), ('segm AP', 0.60)],
    'demo-seg': [('mIoU', 0.70)],
}


def run(target):
    start = time.time()
    proc = subprocess.run(['make', target], cwd=ROOT, capture_output=True, text=True)
    minutes = (time.time() - start) / 60
    if proc.returncode:
        sys.exit(f'make {target} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    out = proc.stdout
    metrics = {label: float(re.search(rf'^{label}: ([0-9.]+)$', out, re.M).group(1)) for label, _ in DEMOS[target]}
    train_test = re.search(r'^train (\d+) s \+ test (\d+) s', out, re.M)
    return minutes, metrics, (int(train_test.group(1)), int(train_test.group(2)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=sorted(DEMOS))
    args = parser.parse_args()
    rows = []
    for target in [args.only] if args.only else DEMOS:
        minutes, metrics, (train_s, test_s) = run(target)
        for label, goal in DEMOS[target]:
            rows.append([f'make {target}', label, f'>= {goal:.2f}', f'{metrics[label]:.3f}',
                         f'{metrics[label] / goal:.2f}x', 'met' if metrics[label] >= goal else 'NOT met'])
        rows.append([f'make {target}', f'minutes (train {train_s} s, test {test_s} s)', f'<= {TARGET_MINUTES}',
                     f'{minutes:.1f}', f'{minutes / TARGET_MINUTES:.2f}x',
                     'met' if minutes <= TARGET_MINUTES else 'NOT met'])
    print_table('Demo targets (whole make command, wall time)', ['command', 'what', 'target', 'measured',
                                                                 'of target', ''], rows)


if __name__ == '__main__':
    main()
