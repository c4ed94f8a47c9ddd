"""Seeing what the blocks do: their attention / importance / region maps drawn over an input image."""
from .block_maps import (BLOCK_TYPES, capture_block_inputs, drconv_region_map, find_blocks, gc_context_map,
                         lip_importance_map, lr_weight_patches, nl_attention_maps)
from .render import ImageGeometry, draw_point, overlay_heatmap, overlay_labels
from .visualize import build_model, prepare_image, visualize_blocks

__all__ = ['BLOCK_TYPES', 'capture_block_inputs', 'drconv_region_map', 'find_blocks', 'gc_context_map',
           'lip_importance_map', 'lr_weight_patches', 'nl_attention_maps', 'ImageGeometry', 'draw_point',
           'overlay_heatmap', 'overlay_labels', 'build_model', 'prepare_image', 'visualize_blocks']
