import json
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmlocalrel.datasets import CLASSES, ShapesInstanceDataset, generate_shapes


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return generate_shapes(str(tmp_path_factory.mktemp('shapes')), num_train=12, num_val=6, size=96, seed=3)


def _files(root):
    return sorted(osp.relpath(p, root) for p in __import__('glob').glob(osp.join(root, '**', '*.*'), recursive=True))


def test_deterministic(shapes, tmp_path):
    again = generate_shapes(str(tmp_path), num_train=12, num_val=6, size=96, seed=3)
    assert _files(shapes) == _files(again)
    for rel in _files(shapes):
        with open(osp.join(shapes, rel), 'rb') as a, open(osp.join(again, rel), 'rb') as b:
            assert a.read() == b.read(), rel
    other = generate_shapes(str(tmp_path / 'other'), num_train=12, num_val=6, size=96, seed=4)
    assert not np.array_equal(cv2.imread(osp.join(shapes, 'images/train/000000.png')),
                              cv2.imread(osp.join(other, 'images/train/000000.png')))


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_are_occlusion_aware_and_consistent(shapes, split):
    coco = COCO(osp.join(shapes, f'annotations/instances_{split}.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    num_overlapping_pairs = 0
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        semantic = cv2.imread(osp.join(shapes, 'semantic', split, info['file_name']), cv2.IMREAD_UNCHANGED)
        assert semantic.shape == (96, 96)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert anns, 'every image holds at least one visible instance'
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        union = np.zeros_like(masks[0], dtype=np.int32)
        for ann, mask in zip(anns, masks):
            # the box is the mask's box, the area its pixel count
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(ann['bbox'], [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
            assert ann['area'] == mask.sum()
            # visible pixels of an instance carry its class in the semantic map
            assert (semantic[mask] == ann['category_id']).all()
            union += mask
        # masks are what is visible: no pixel belongs to two instances
        assert union.max() <= 1
        # every labelled pixel is either an instance's or a (dropped) mostly-hidden shape's
        assert ((semantic > 0) >= (union > 0)).all()
        num_overlapping_pairs += sum(
            1 for i, a in enumerate(anns) for b in anns[i + 1:] if _boxes_overlap(a['bbox'], b['bbox']))
    assert num_overlapping_pairs > 0, 'the generator should produce overlapping instances'


def _boxes_overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_mmdet_dataset_reads_it(shapes):
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds = ShapesInstanceDataset(
        data_root=shapes, ann_file='annotations/instances_val.json', data_prefix=dict(img='images/val/'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    with open(osp.join(shapes, 'annotations/instances_val.json')) as f:
        coco = json.load(f)
    assert len(ds) == 6
    sample = ds[0]
    assert sample['img'].shape == (96, 96, 3)
    n = sum(a['image_id'] == coco['images'][0]['id'] for a in coco['annotations'])
    assert len(sample['gt_bboxes']) == n and len(sample['gt_masks']) == n
    rle = next(a for a in coco['annotations'] if a['image_id'] == coco['images'][0]['id'])['segmentation']
    np.testing.assert_array_equal(sample['gt_masks'].masks[0], mask_utils.decode(rle))


@pytest.mark.parametrize('kwargs,match', [(dict(num_train=0), 'num_train and num_val'), (dict(size=16), 'size')])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_shapes(str(tmp_path), **kwargs)
