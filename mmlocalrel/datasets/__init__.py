from .shapes import CLASSES, generate_shapes
from .shapes_coco import ShapesInstanceDataset
from .shapes_seg import ShapesSegDataset

__all__ = ['CLASSES', 'generate_shapes', 'ShapesInstanceDataset', 'ShapesSegDataset']
