import glob
import os.path as osp

import yaml

from tests.tools.conftest import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _listed():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    listed = []
    for metafile in index['Import']:
        with open(osp.join(ROOT, metafile)) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        assert all(c['Paper']['URL'].startswith('https://') for c in meta['Collections'])
        for model in meta['Models']:
            assert model['In Collection'] in collections
            listed.append(model['Config'])
    return listed


def test_every_config_is_listed_and_every_listed_config_exists():
    configs = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                     if '_base_' not in p)
    listed = _listed()
    assert len(listed) == len(set(listed))
    assert sorted(listed) == configs
    assert all(osp.isfile(osp.join(ROOT, p)) for p in listed)


def test_index_is_up_to_date():
    assert load_tool('update_model_index').main(['--check']) == 0
