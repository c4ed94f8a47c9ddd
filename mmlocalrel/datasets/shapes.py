"""The generated shapes dataset: the project's embedded data (no dataset can be downloaded here).

Deterministic images of coloured squares, circles and triangles on plain, gently varying backgrounds, with overlapping instances.
Shapes are painted back to front, so an instance's mask is what remains visible of it (occlusion-aware); an instance
hidden below ``min_visible`` of its area is dropped. Written as

    <root>/images/{train,val}/000000.png
    <root>/annotations/instances_{train,val}.json     COCO instances (compressed RLE masks, xywh boxes)
    <root>/semantic/{train,val}/000000.png            per-pixel labels: 0 background, 1 + category index

so mmdet's CocoMetric and mmseg's IoUMetric evaluate it as they would COCO or ADE20K.
"""
import json
import os
import os.path as osp

import cv2
import numpy as np
from pycocotools import mask as mask_utils

CLASSES = ('square', 'circle', 'triangle')
SPLITS = ('train', 'val')


def _texture(rng, size):
    # one background colour with a gentle low-frequency variation and pixel noise
    colour = rng.uniform(30, 225, size=3).astype(np.float32)
    variation = cv2.resize(rng.uniform(-20, 20, size=(4, 4, 3)).astype(np.float32), (size, size),
                           interpolation=cv2.INTER_CUBIC)
    return colour + variation + rng.normal(0, 6, size=(size, size, 3)).astype(np.float32)


def _paint(rng, kind, size, min_side, max_side):
    """Binary mask of one shape of ``kind`` with random size, position and rotation."""
    mask = np.zeros((size, size), np.uint8)
    side = rng.uniform(min_side, max_side)
    cx, cy = rng.uniform(side / 2, size - side / 2, size=2)
    if kind == 'circle':
        cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(side / 2)), 1, thickness=-1)
        return mask
    if kind == 'square':
        angles = np.deg2rad(rng.uniform(0, 90) + np.array([45, 135, 225, 315]))
        radius = side / np.sqrt(2) * 0.9
    else:  # equilateral triangle
        angles = np.deg2rad(rng.uniform(0, 120) + np.array([90, 210, 330]))
        radius = side / 2 * 1.1
    pts = np.stack([cx + radius * np.cos(angles), cy - radius * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def _colour(rng, background_mean):
    # a colour clearly away from the local background, so every shape is visible
    while True:
        c = rng.uniform(0, 255, size=3)
        if np.abs(c - background_mean).sum() > 120:
            return c


def generate_image(rng, size=128, max_instances=4, min_side=None, max_side=None, min_visible=0.4):
    """One image: (HxWx3 uint8 BGR image, [(category index, visible mask)], semantic label map)."""
    min_side = min_side or size * 0.18
    max_side = max_side or size * 0.45
    img = _texture(rng, size)
    semantic = np.zeros((size, size), np.uint8)
    painted = []  # (category index, full mask), back to front
    for _ in range(rng.randint(1, max_instances + 1)):
        cat = rng.randint(len(CLASSES))
        full = _paint(rng, CLASSES[cat], size, min_side, max_side)
        colour = _colour(rng, img[full > 0].mean(axis=0))
        shade = 1 + rng.normal(0, 0.04, size=(size, size, 1))
        img = np.where(full[..., None] > 0, colour * shade, img)
        semantic[full > 0] = cat + 1
        painted.append((cat, full))
    instances = []
    covered = np.zeros((size, size), bool)
    for cat, full in reversed(painted):  # front to back: what later shapes cover is hidden
        visible = (full > 0) & ~covered
        covered |= full > 0
        if visible.sum() >= min_visible * full.sum() and visible.sum() >= 16:
            instances.append((cat, visible.astype(np.uint8)))
    # pixels of dropped (mostly hidden) instances keep their class in the semantic map: that is what is seen
    return np.clip(img, 0, 255).astype(np.uint8), instances[::-1], semantic


def _coco_annotation(ann_id, img_id, cat, mask):
    rle = mask_utils.encode(np.asfortranarray(mask))
    x, y, w, h = mask_utils.toBbox(rle).tolist()
    return dict(id=ann_id, image_id=img_id, category_id=cat + 1, iscrowd=0, area=float(mask_utils.area(rle)),
                bbox=[x, y, w, h], segmentation=dict(size=list(rle['size']), counts=rle['counts'].decode('ascii')))


def generate_split(root, split, num_images, size=128, seed=0, **kwargs):
    """Write one split; returns the path of its COCO annotation file."""
    rng = np.random.RandomState(seed + (0 if split == 'train' else 10_000))
    img_dir, sem_dir = osp.join(root, 'images', split), osp.join(root, 'semantic', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(sem_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for img_id in range(num_images):
        img, instances, semantic = generate_image(rng, size=size, **kwargs)
        name = f'{img_id:06d}.png'
        cv2.imwrite(osp.join(img_dir, name), img)
        cv2.imwrite(osp.join(sem_dir, name), semantic)
        images.append(dict(id=img_id, file_name=name, height=size, width=size))
        for cat, mask in instances:
            annotations.append(_coco_annotation(len(annotations) + 1, img_id, cat, mask))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)])
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return ann_file


def generate_shapes(root, num_train=400, num_val=60, size=128, seed=0, **kwargs):
    """Write both splits under ``root`` (deterministic for a given seed and sizes); returns ``root``."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train} and {num_val}')
    if size < 32:
        raise ValueError(f'size must be >= 32 pixels, got {size}')
    generate_split(root, 'train', num_train, size=size, seed=seed, **kwargs)
    generate_split(root, 'val', num_val, size=size, seed=seed, **kwargs)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(num_train=num_train, num_val=num_val, size=size, seed=seed, classes=CLASSES), f)
    return root
