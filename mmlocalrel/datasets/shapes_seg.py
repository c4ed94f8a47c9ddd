from mmengine.registry import DATASETS
from mmseg.datasets import BaseSegDataset

from .shapes import CLASSES


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """Semantic label maps of the generated shapes dataset (see ``shapes.py``); mmseg's BaseSegDataset otherwise.

    ``<data_root>/images/<split>/xxx.png`` pairs with ``<data_root>/semantic/<split>/xxx.png``, whose pixels are
    0 (background) or 1 + the shape's category index, so background is a class of its own (``reduce_zero_label``
    stays False) and mmseg's IoUMetric reports it beside the shapes. Registered in mmengine's root DATASETS, so
    configs under the mmseg (or any) default scope find it.
    """

    METAINFO = dict(classes=('background', ) + CLASSES,
                    palette=[(0, 0, 0), (220, 20, 60), (0, 128, 255), (255, 200, 0)])

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs):
        if reduce_zero_label:
            raise ValueError('reduce_zero_label must be False: label 0 is the background class of the shapes maps')
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, reduce_zero_label=False, **kwargs)
