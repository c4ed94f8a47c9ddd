"""mmdet's ResNet with plugins placed per block, not only per stage, and chained under every scope.

mmdet's ``plugins`` key puts a plugin in every block of the chosen stages; papers place theirs in chosen blocks (one
Non-local block right before the last block of res4; five, in every other block of res3 and res4). Each plugin entry
here may name its blocks::

    plugins=[dict(cfg=dict(type='NonLocalBlock'), position='after_block',
                  blocks=((), (1, 3), (1, 3, 5), ()))]  # one tuple of block indices per stage (negatives count
                                                        # from the end of the stage)

and may use ``position='after_block'``: on the block's output, after the residual sum and its ReLU, i.e. between two
residual blocks, where the Non-local paper inserts its block (and mmaction2's ResNet3d its ``non_local``), besides
mmdet's 'after_conv1/2/3' inside the residual branch. Entries without ``blocks`` behave as in mmdet (``stages``).

Plugins at one position run in sequence (mmdet's Bottleneck), also when the config is built under the mmseg scope,
whose own ResNet (mmseg 1.2.2) feeds the position's input to every plugin, so that only the last one counts.

For mmseg's dilated ResNetV1c-D8 form, ``contract_dilation`` and ``multi_grid`` behave as in mmseg's ResNet: with
``deep_stem=True, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True`` this backbone has the same
modules, state-dict keys and outputs as mmseg's ``ResNetV1c`` (its checkpoints load).
"""
from mmcv.cnn import build_plugin_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.registry import MODELS

INNER_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')
POSITIONS = INNER_POSITIONS + ('after_block', )


def _add_plugins(block, in_channels, cfgs):
    """Build plugin layers from ``cfgs`` into ``block``; returns their names (mmdet's make_block_plugins)."""
    names = []
    for cfg in cfgs:
        cfg = cfg.copy()
        name, layer = build_plugin_layer(cfg, in_channels=in_channels, postfix=cfg.pop('postfix', ''))
        if hasattr(block, name):
            raise ValueError(f'PluginResNet: two plugins named {name!r} in one block; give each a distinct '
                             f"'postfix' in its cfg")
        block.add_module(name, layer)
        names.append(name)
    return names


class _AfterBlockPlugins:
    """Mixin for mmdet's blocks: plugins at position 'after_block' run on the block's output, in order."""

    def __init__(self, *, planes, plugins=None, **kwargs):
        plugins = plugins or []
        inner = [p for p in plugins if p['position'] != 'after_block']
        super().__init__(planes=planes, plugins=inner or None, **kwargs)
        self.after_block_plugin_names = _add_plugins(
            self, planes * self.expansion, [p['cfg'] for p in plugins if p['position'] == 'after_block'])

    def forward(self, x):
        out = super().forward(x)
        for name in self.after_block_plugin_names:
            out = getattr(self, name)(out)
        return out


class PluginBottleneck(_AfterBlockPlugins, Bottleneck):
    pass


class PluginBasicBlock(_AfterBlockPlugins, BasicBlock):
    pass


class _StageBlocks:
    """Stands in for the block class in mmdet's ResLayer, which builds a stage's blocks in order with the same
    arguments: this gives block ``i`` its own plugins and dilation."""

    def __init__(self, block, per_block):
        self.block = {Bottleneck: PluginBottleneck, BasicBlock: PluginBasicBlock}[block]
        self.expansion = block.expansion
        self.per_block = per_block
        self.built = 0

    def __call__(self, **kwargs):
        kwargs.update(self.per_block[self.built])
        self.built += 1
        return self.block(**kwargs)


def _check_indices(where, indices, num_blocks):
    if not isinstance(indices, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise ValueError(f'PluginResNet: {where} must be a tuple of block indices (ints), got {indices!r}')
    normalised = []
    for i in indices:
        if not -num_blocks <= i < num_blocks:
            raise ValueError(f'PluginResNet: {where} has block index {i}, outside the stage: allowed '
                             f'0..{num_blocks - 1} (or -{num_blocks}..-1 from the end) for its {num_blocks} blocks')
        normalised.append(i % num_blocks)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f'PluginResNet: {where} names a block twice: {indices!r}')
    return frozenset(normalised)


@MODELS.register_module()
class PluginResNet(ResNet):
    """mmdet's ResNet (same arguments, modules and state-dict keys) with per-block plugin placement.

    Args:
        plugins (list[dict] | None): as mmdet's ResNet (``cfg``, ``position``, optional ``stages``), plus:

            - ``position`` may also be 'after_block' (on the block output, between residual blocks); it is the only
              position for BasicBlock depths (18, 34).
            - ``blocks`` (optional, instead of ``stages``): one sequence of block indices per stage,
              e.g. ``((), (), (4, ), ())``; the plugin goes into those blocks only.
        contract_dilation (bool): as mmseg's ResNet: the first block of a stage with dilation d > 1 uses d // 2.
        multi_grid (Sequence[int] | None): as mmseg's ResNet: the last stage's blocks use these dilations.
        **kwargs: mmdet's ResNet arguments.
    """

    def __init__(self, depth, *, plugins=None, contract_dilation=False, multi_grid=None, **kwargs):
        # Read by make_stage_plugins / make_res_layer, which ResNet.__init__ calls.
        self.contract_dilation = contract_dilation
        self.multi_grid = None if multi_grid is None else tuple(multi_grid)
        if plugins is not None and not isinstance(plugins, (list, tuple)):
            raise ValueError(f'PluginResNet: plugins must be a list of dicts, got {plugins!r}')
        super().__init__(depth, plugins=None if plugins is None else list(plugins), **kwargs)

    def make_stage_plugins(self, plugins, stage_idx):
        """The plugin entries of stage ``stage_idx``; each keeps its block selection of this stage under
        ``blocks`` (a frozenset of indices, or None for every block)."""
        num_blocks = self.stage_blocks[stage_idx]
        stage_plugins = []
        for k, plugin in enumerate(plugins):
            if not isinstance(plugin, dict) or 'cfg' not in plugin or 'position' not in plugin:
                raise ValueError(f"PluginResNet: plugins[{k}] must be a dict with 'cfg' and 'position', "
                                 f'got {plugin!r}')
            plugin = dict(plugin)
            unknown = set(plugin) - {'cfg', 'position', 'stages', 'blocks'}
            if unknown:
                raise ValueError(f'PluginResNet: plugins[{k}] has unknown keys {sorted(unknown)}; allowed: '
                                 f"'cfg', 'position', 'stages', 'blocks'")
            allowed = POSITIONS if self.block is Bottleneck else ('after_block', )
            if plugin['position'] not in allowed:
                raise ValueError(f'PluginResNet: plugins[{k}].position must be one of {allowed} for '
                                 f"{self.block.__name__}, got {plugin['position']!r}")
            stages = plugin.pop('stages', None)
            blocks = plugin.pop('blocks', None)
            if stages is not None and blocks is not None:
                raise ValueError(f"PluginResNet: plugins[{k}] gives both 'stages' and 'blocks'; give one ('blocks' "
                                 f'selects stages too: an empty tuple leaves a stage out)')
            for key, value in (('stages', stages), ('blocks', blocks)):
                if value is not None and (not isinstance(value, (list, tuple)) or len(value) != self.num_stages):
                    raise ValueError(f'PluginResNet: plugins[{k}].{key} must have one entry per stage '
                                     f'(num_stages={self.num_stages}), got {value!r}')
            if blocks is not None:
                plugin['blocks'] = _check_indices(f'plugins[{k}].blocks[{stage_idx}]', blocks[stage_idx], num_blocks)
                if plugin['blocks']:
                    stage_plugins.append(plugin)
            elif stages is None or stages[stage_idx]:
                plugin['blocks'] = None
                stage_plugins.append(plugin)
        return stage_plugins

    def make_res_layer(self, *, num_blocks, dilation, plugins=None, **kwargs):
        stage_idx = len(self.res_layers)  # ResNet.__init__ appends each stage's name after building it
        if self.multi_grid is not None and stage_idx == len(self.stage_blocks) - 1:
            if len(self.multi_grid) != num_blocks:
                raise ValueError(f'PluginResNet: multi_grid must give one dilation per block of the last stage '
                                 f'({num_blocks}), got {self.multi_grid!r}')
            dilations = list(self.multi_grid)
        else:
            first = dilation // 2 if self.contract_dilation and dilation > 1 else dilation
            dilations = [first] + [dilation] * (num_blocks - 1)
        per_block = []
        for i in range(num_blocks):
            block_plugins = [{key: value for key, value in p.items() if key != 'blocks'}
                             for p in plugins or [] if p['blocks'] is None or i in p['blocks']]
            per_block.append(dict(dilation=dilations[i], plugins=block_plugins or None))
        blocks = _StageBlocks(kwargs.pop('block'), per_block)
        layer = super().make_res_layer(block=blocks, num_blocks=num_blocks, dilation=dilation, **kwargs)
        if blocks.built != num_blocks:  # ResLayer's construction order is what per_block relies on
            raise RuntimeError(f'PluginResNet: built {blocks.built} blocks for a stage of {num_blocks}')
        layer.block = blocks.block
        return layer
