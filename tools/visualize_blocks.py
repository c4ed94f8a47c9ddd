"""Draw what a model's blocks compute over an image: GC context attention, Non-local attention of query points, DRConv
regions, LIP importance, Local Relation aggregation weights; one PNG per block (and query point).

python tools/visualize_blocks.py CONFIG CHECKPOINT IMAGE --out-dir DIR [--points Y,X ...] [--cfg-options ...]
"""
import argparse

from mmengine.config import DictAction

import mmlocalrel  # noqa: F401  (registers the blocks; checkpoint loading on torch >= 2.6)
from mmlocalrel.engine import load_config
from mmlocalrel.visualization import visualize_blocks


def _point(text):
    try:
        y, x = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a point is Y,X in image pixels (e.g. 64,32), got {text!r}')
    return y, x


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out-dir', required=True, help='where the PNGs go')
    parser.add_argument('--points', nargs='+', type=_point, default=None,
                        help='query pixels Y,X of the image for Non-local and Local Relation (default: the centre '
                        'and three others)')
    parser.add_argument('--alpha', type=float, default=0.5, help='opacity of the colour map over the image')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides, as tools/test.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    written = visualize_blocks(cfg, args.checkpoint, args.image, args.out_dir, args.points, args.alpha)
    for path in written:
        print(path)
    return written


if __name__ == '__main__':
    main()
