"""Parameters and FLOPs of a config's model, per block type and in total, counting mmlocalrel's custom ops
(mmengine's counter sees them as 0): python tools/get_flops.py CONFIG [--shape H W]

FLOPs are mmengine's unit (one multiply-add = 1) for one image of the given shape, in inference mode.
"""
import argparse
from collections import defaultdict

import torch
from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope

import mmlocalrel  # noqa: F401
from mmlocalrel.analysis import flop_analyzer
from mmlocalrel.engine import load_config

PARTS = ('backbone', 'neck', 'rpn_head', 'roi_head', 'decode_head', 'auxiliary_head')


def _inputs(model, scope, height, width):
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, height, width)], num_items=[1])
    else:
        from mmseg.structures import SegDataSample
        from mmengine.structures import PixelData
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, height, width, dtype=torch.long))
        packed = dict(inputs=[torch.randint(0, 255, (3, height, width), dtype=torch.uint8)], data_samples=[sample])
    data = model.data_preprocessor(packed, False)
    return data['inputs'], data['data_samples']


def _block_types(model):
    """Top-most modules of mmlocalrel's own classes: name -> class name."""
    found = {}
    for name, module in model.named_modules():
        if type(module).__module__.startswith('mmlocalrel.models.layers') and \
                not any(name.startswith(outer + '.') for outer in found):
            found[name] = type(module).__name__
    return found


def complexity(cfg, height, width):
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).eval()
    inputs, samples = _inputs(model, cfg.default_scope, height, width)

    class Tensor(torch.nn.Module):  # the model in 'tensor' mode with its samples bound, for jit tracing
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, samples, mode='tensor')

    wrapper = Tensor()
    with torch.no_grad():
        analyzer = flop_analyzer(wrapper, (inputs, ))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
        by_module = analyzer.by_module()
    rows = defaultdict(lambda: [0, 0, 0])  # name -> [count, params, flops]
    for name, kind in _block_types(model).items():
        module = model.get_submodule(name)
        rows[kind][0] += 1
        rows[kind][1] += sum(p.numel() for p in module.parameters())
        rows[kind][2] += by_module.get('model.' + name, 0)
    parts = {}
    for part in PARTS:
        if hasattr(model, part) and getattr(model, part) is not None:
            parts[part] = (sum(p.numel() for p in getattr(model, part).parameters()), by_module.get('model.' + part, 0))
    total = (sum(p.numel() for p in model.parameters()), analyzer.total())
    return dict(blocks=dict(rows), parts=parts, total=total, by_operator=analyzer.by_operator())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    result = complexity(cfg, *args.shape)
    g = lambda n: f'{n / 1e9:.3f} G'  # noqa: E731
    m = lambda n: f'{n / 1e6:.3f} M'  # noqa: E731
    print(f'{args.config}, input 3x{args.shape[0]}x{args.shape[1]}')
    print(f'{"block type":<24}{"count":>7}{"params":>14}{"FLOPs":>14}')
    for kind, (count, params, flops) in sorted(result['blocks'].items()):
        print(f'{kind:<24}{count:>7}{m(params):>14}{g(flops):>14}')
    for part, (params, flops) in result['parts'].items():
        print(f'{part:<24}{"":>7}{m(params):>14}{g(flops):>14}')
    print(f'{"total":<24}{"":>7}{m(result["total"][0]):>14}{g(result["total"][1]):>14}')
    return result


if __name__ == '__main__':
    main()
