"""tools/demo.py, tools/train.py and tools/test.py on the segmentation demo config (make demo-seg): mmseg configs
are told apart by their default scope and evaluated with mmseg's IoUMetric."""
import contextlib
import glob
import io
import os.path as osp
import re
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import seg_demo_options
from tests.tools.conftest import load_tool

CONFIG = 'configs/demo/seg/fcn_r50-d8_gc_shapes.py'


@pytest.fixture(scope='module')
def demo_run(shapes_root, tmp_path_factory):
    demo = load_tool('demo')
    work_dir = str(tmp_path_factory.mktemp('demo_seg'))
    argv = sys.argv
    sys.argv = ['demo.py', CONFIG, '--work-dir', work_dir] + seg_demo_options(shapes_root, max_iters=2)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            demo.main()
    finally:
        sys.argv = argv
    return work_dir, out.getvalue()


def test_demo_trains_then_prints_the_miou(demo_run):
    work_dir, out = demo_run
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    match = re.search(r'^mIoU: (\d+\.\d{3})$', out, re.M)
    assert match, out[-2000:]
    assert 0 <= float(match.group(1)) <= 1  # reported as a fraction (IoUMetric gives percent)


def test_test_tool_evaluates_and_writes_label_maps(demo_run, shapes_root, test_tool, tmp_path):
    work_dir, _ = demo_run
    out = str(tmp_path / 'pred')
    metrics = test_tool.main([CONFIG, osp.join(work_dir, 'iter_2.pth'), '--work-dir', str(tmp_path), '--out', out]
                             + seg_demo_options(shapes_root))
    assert set(metrics) >= {'aAcc', 'mIoU', 'mAcc'}
    # --out for an mmseg config: one predicted label map per val image, classes 0..3, the image's size
    val = sorted(osp.basename(p) for p in glob.glob(osp.join(shapes_root, 'images', 'val', '*.png')))
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(out, '*.png'))) == val
    pred = cv2.imread(osp.join(out, val[0]), cv2.IMREAD_UNCHANGED)
    assert pred.shape == (64, 64) and set(np.unique(pred)) <= {0, 1, 2, 3}
