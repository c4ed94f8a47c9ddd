"""Run tools/train.py, then save this rank's final weights and losses to WORK_DIR/rank<R>.pth (for the dist test)."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import load_tool  # noqa: E402


def main():
    runner = load_tool('train').main(sys.argv[1:])
    model = getattr(runner.model, 'module', runner.model)
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    torch.save(dict(state_dict=model.state_dict(), losses=list(losses), world_size=runner.world_size),
               os.path.join(runner.work_dir, f'rank{runner.rank}.pth'))


if __name__ == '__main__':
    main()
