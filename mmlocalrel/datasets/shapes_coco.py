from mmdet.datasets import CocoDataset
from mmengine.registry import DATASETS

from .shapes import CLASSES


@DATASETS.register_module()
class ShapesInstanceDataset(CocoDataset):
    """COCO-format instances of the generated shapes dataset (see ``shapes.py``); mmdet's CocoDataset otherwise."""

    METAINFO = dict(classes=CLASSES, palette=[(220, 20, 60), (0, 128, 255), (255, 200, 0)])
