"""Run one image through a config's model and write what its blocks compute as PNGs over the image
(tools/visualize_blocks.py is the command line)."""
import os
import os.path as osp

import cv2
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS, init_default_scope

from .block_maps import (capture_block_inputs, drconv_region_map, find_blocks, gc_context_map, lip_importance_map,
                         lr_weight_patches, nl_attention_maps)
from .render import ImageGeometry, draw_point, overlay_heatmap, overlay_labels

# Transforms that read annotations: the image alone goes through the test pipeline.
_ANNOTATION_TRANSFORMS = ('LoadAnnotations', 'LoadPanopticAnnotations')


def build_model(cfg, checkpoint, device='cpu'):
    from mmengine.runner import load_checkpoint
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    load_checkpoint(model, checkpoint, map_location='cpu')
    return model.to(device).eval()


def prepare_image(cfg, model, image_path):
    """The image through the config's test pipeline (without annotation loading) and the model's data
    preprocessor: (batch inputs, data samples)."""
    from mmcv.transforms import Compose
    if not osp.isfile(image_path):
        raise FileNotFoundError(f'image not found: {image_path}')
    steps = [dict(t) for t in cfg.test_dataloader.dataset.pipeline if t['type'] not in _ANNOTATION_TRANSFORMS]
    steps[0] = dict(type='LoadImageFromFile')  # whatever the dataset loads from, here it is a file
    for step in steps:  # packers list meta keys the annotations would have set
        if 'meta_keys' in step:
            step['meta_keys'] = tuple(k for k in step['meta_keys'] if k not in ('img_id', 'seg_map_path'))
    init_default_scope(cfg.default_scope)
    packed = Compose(steps)(dict(img_path=image_path, img_id=0))
    data = model.data_preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]), False)
    return data['inputs'], data['data_samples']


def _default_points(shape):
    h, w = shape
    return [(h // 2, w // 2), (h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 2)]


def _key_map_on_input_grid(attention, input_shape):
    """A (Hk, Wk) key map of a sub-sampled Non-local block back on its input's (H, W) grid (each key covers 2 x 2)."""
    hk, wk = attention.shape
    h, w = input_shape
    if (hk, wk) == (h, w):
        return attention
    up = attention.repeat_interleave(h // hk, 0).repeat_interleave(w // wk, 1)
    return F.pad(up, (0, w - up.shape[1], 0, h - up.shape[0]))


def visualize_blocks(cfg, checkpoint, image_path, out_dir, points=None, alpha=0.5):
    """Write one PNG per block instance (per block and query point for Non-local and Local Relation) into
    ``out_dir``, each the size of the input image. ``points``: (y, x) pixels of the image, default the centre and
    three others. Returns the written paths."""
    model = build_model(cfg, checkpoint)
    blocks = find_blocks(model)
    if not blocks:
        raise ValueError(f'{cfg.filename}: the model holds no block to visualise (GCBlock, NonLocalBlock, DRConv2d, '
                         'LIP2d, LocalRelation2d)')
    image = cv2.imread(image_path, cv2.IMREAD_COLOR) if osp.isfile(image_path) else None
    inputs, samples = prepare_image(cfg, model, image_path)
    if image is None:
        raise ValueError(f'cannot read the image {image_path}')
    meta = samples[0].metainfo
    geometry = ImageGeometry(image.shape[:2], meta['img_shape'], meta.get('pad_shape', meta['batch_input_shape']))
    points = list(points) if points else _default_points(image.shape[:2])
    for y, x in points:  # checked here, whether or not the model has a block that uses them
        if not (0 <= y < image.shape[0] and 0 <= x < image.shape[1]):
            raise ValueError(f'point (y={y}, x={x}) lies outside the {image.shape[0]} x {image.shape[1]} image '
                             f'{image_path}')

    with capture_block_inputs(blocks) as capture, torch.no_grad():
        model(inputs, samples, mode='tensor')

    os.makedirs(out_dir, exist_ok=True)
    written = []

    def save(canvas, name):
        path = osp.join(out_dir, name + '.png')
        if not cv2.imwrite(path, canvas):
            raise OSError(f'could not write {path}')
        written.append(path)

    for prefix, name, block in blocks:
        if name not in capture.captured:
            continue  # a block the forward did not reach (e.g. a head not run in 'tensor' mode)
        x, guide = capture.captured[name]['x'], capture.captured[name]['guide']
        if prefix == 'gc':
            if block.pooling_type != 'att':
                continue  # 'avg' pooling has no attention to draw
            save(overlay_heatmap(image, geometry.to_image(gc_context_map(block, x)[0]), alpha), f'gc_{name}')
        elif prefix == 'lip':
            save(overlay_heatmap(image, geometry.to_image(lip_importance_map(block, x, guide)[0]), alpha),
                 f'lip_{name}')
        elif prefix == 'drconv':
            labels = geometry.to_image(drconv_region_map(block)[0].float(), nearest=True)
            save(overlay_labels(image, labels.round().astype('int64'), alpha), f'drconv_{name}')
        elif prefix == 'nl':
            if block.dim != 2:
                continue
            grid = tuple(x.shape[2:])
            cells = [geometry.point_to_grid(p, grid) for p in points]
            maps = nl_attention_maps(block, x, cells)[0]
            for (py, px), cell, attention in zip(points, cells, maps):
                heat = geometry.to_image(_key_map_on_input_grid(attention, grid))
                canvas = overlay_heatmap(image, heat, alpha)
                save(draw_point(canvas, geometry.grid_to_point(cell, grid)), f'nl_{name}_y{py}_x{px}')
        elif prefix == 'lr':
            s, d, k = block.stride, block.dilation, block.kernel_size
            grid = tuple(x.shape[2:])
            out_grid = tuple((n - 1) // s + 1 for n in grid)
            cells = [geometry.point_to_grid(p, out_grid) for p in points]
            patches = lr_weight_patches(block, x, cells)[0]
            for (py, px), cell, patch in zip(points, cells, patches):
                # the k x k weights placed at their taps on the input grid; pixels outside the window stay uncoloured
                sparse = torch.zeros(grid)
                footprint = torch.zeros(grid, dtype=torch.bool)
                cy, cx = cell[0] * s, cell[1] * s
                for i in range(k):
                    for j in range(k):
                        y, x_ = cy + (i - k // 2) * d, cx + (j - k // 2) * d
                        if 0 <= y < grid[0] and 0 <= x_ < grid[1]:
                            sparse[y, x_] = patch[i, j]
                            footprint[y, x_] = True
                heat = geometry.to_image(sparse, nearest=True)
                mask = geometry.to_image(footprint.float(), nearest=True) > 0.5
                canvas = overlay_heatmap(image, heat, max(alpha, 0.7), mask=mask)
                save(draw_point(canvas, geometry.grid_to_point((cy, cx), grid)), f'lr_{name}_y{py}_x{px}')
    return written
