from .shapes import CLASSES, generate_shapes
from .shapes_coco import ShapesInstanceDataset

__all__ = ['CLASSES', 'generate_shapes', 'ShapesInstanceDataset']
