import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, init_default_scope

from mmlocalrel.datasets import CLASSES, ShapesSegDataset, generate_shapes

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return generate_shapes(str(tmp_path_factory.mktemp('shapes')), num_train=6, num_val=12, size=64, seed=5)


def _dataset(root, split, **kwargs):
    init_default_scope('mmseg')
    return DATASETS.build(dict(type='ShapesSegDataset', data_root=root, pipeline=PIPELINE,
                               data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'semantic/{split}'),
                               **kwargs))


def test_registered_in_the_root_registry_and_found_in_mmseg_scope():
    from mmseg.registry import DATASETS as MMSEG_DATASETS
    assert DATASETS.get('ShapesSegDataset') is ShapesSegDataset
    init_default_scope('mmseg')
    assert MMSEG_DATASETS.get('ShapesSegDataset') is ShapesSegDataset


def test_metainfo_puts_background_first():
    assert ShapesSegDataset.METAINFO['classes'] == ('background', ) + CLASSES
    assert len(ShapesSegDataset.METAINFO['palette']) == 4


@pytest.mark.parametrize('split,num', [('train', 6), ('val', 12)])
def test_reads_images_with_their_own_label_maps(shapes, split, num):
    ds = _dataset(shapes, split)
    assert len(ds) == num
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(shapes, 'images', split, '*.png')))
    assert sorted(osp.basename(ds.get_data_info(i)['img_path']) for i in range(num)) == names
    for i in range(num):
        sample = ds[i]
        name = osp.basename(sample['data_samples'].img_path)
        assert osp.basename(sample['data_samples'].seg_map_path) == name
        img = cv2.imread(osp.join(shapes, 'images', split, name))
        label = cv2.imread(osp.join(shapes, 'semantic', split, name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(sample['inputs'].permute(1, 2, 0).numpy(), img)
        # labels are kept as written: 0 stays background (no reduce_zero_label), shapes 1..3
        np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), label)


def test_labels_cover_every_class(shapes):
    labels = np.concatenate([cv2.imread(p, cv2.IMREAD_UNCHANGED).ravel()
                             for p in glob.glob(osp.join(shapes, 'semantic', 'val', '*.png'))])
    assert set(np.unique(labels)) == {0, 1, 2, 3}


def test_iou_metric_scores_the_label_maps_per_class(shapes):
    """mmseg's IoUMetric on this dataset: the ground truth scores 100 on all four classes, and a prediction that
    swaps circles for squares loses exactly those two classes."""
    from mmseg.evaluation import IoUMetric
    ds = _dataset(shapes, 'val')

    def evaluate(swap):
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = ds.metainfo
        for i in range(len(ds)):
            sample = ds[i]['data_samples']
            gt = sample.gt_sem_seg.data
            pred = gt.clone()
            if swap:
                pred[gt == 1], pred[gt == 2] = 2, 1
            metric.process({}, [dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt))])
        results = metric.compute_metrics(metric.results)
        per_class = metric.results  # (area_intersect, area_union, ...) per image
        inter = torch.stack([r[0] for r in per_class]).sum(0)
        union = torch.stack([r[1] for r in per_class]).sum(0)
        return results['mIoU'], (inter / union).tolist()

    miou, ious = evaluate(swap=False)
    assert miou == 100.0 and ious == [1.0] * 4
    miou, ious = evaluate(swap=True)
    assert ious[0] == 1.0 and ious[3] == 1.0 and ious[1] == 0.0 and ious[2] == 0.0
    assert miou == 50.0


def test_reduce_zero_label_is_refused(shapes):
    with pytest.raises(ValueError, match='reduce_zero_label'):
        _dataset(shapes, 'val', reduce_zero_label=True)
