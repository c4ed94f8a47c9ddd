"""Generate the shapes dataset (COCO instances + semantic maps): python tools/generate_shapes.py data/shapes"""
import argparse
import json
import os.path as osp

from mmlocalrel.datasets import generate_shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', help='output folder, e.g. data/shapes')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='regenerate even if the same dataset is there')
    args = parser.parse_args()
    want = dict(num_train=args.num_train, num_val=args.num_val, size=args.size, seed=args.seed)
    meta = osp.join(args.root, 'meta.json')
    if not args.force and osp.exists(meta):
        with open(meta) as f:
            have = json.load(f)
        if all(have.get(k) == v for k, v in want.items()):
            print(f'{args.root}: already generated ({want})')
            return
    generate_shapes(args.root, **want)
    print(f'{args.root}: generated {want}')


if __name__ == '__main__':
    main()
