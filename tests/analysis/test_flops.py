"""The custom-op FLOP handles against hand-derived formulas, one layer each, and tools/get_flops.py end to end."""
import torch

from mmlocalrel.analysis import flop_analyzer
from mmlocalrel.models.layers import DRConv2d, LIP2d, LocalRelation2d
from mmlocalrel.ops import local_aggregation
from tests.tools.conftest import load_tool


def _op_flops(module, *inputs):
    analyzer = flop_analyzer(module, inputs)
    analyzer.unsupported_ops_warnings(False)
    return analyzer.by_operator()


def test_local_relation_counts_logits_and_aggregation():
    layer = LocalRelation2d(32, 16, kernel_size=7, stride=2, channels_per_group=8).eval()
    ops = _op_flops(layer, torch.randn(2, 32, 15, 13))
    b, h, w, g, k2 = 2, 8, 7, 32 // 8, 49  # output 8x7 at stride 2; G = C / m groups
    assert ops['PythonOp.LocalRelationFunction'] == b * h * w * (g * k2 + 32 * k2)


def test_lip2d_counts_two_weighted_window_sums():
    layer = LIP2d(16, kernel_size=3, stride=2, padding=1).eval()
    ops = _op_flops(layer, torch.randn(2, 16, 11, 9))
    assert ops['PythonOp.Lip2dFunction'] == 2 * 9 * (2 * 16 * 6 * 5)  # out 6x5, like avg_pool2d(3, 2, 1)


def test_region_conv_counts_one_convolution():
    layer = DRConv2d(8, 12, kernel_size=3, stride=2, padding=1, region_num=4).eval()
    ops = _op_flops(layer, torch.randn(2, 8, 9, 10))
    assert ops['PythonOp.RegionConvFunction'] == (2 * 12 * 5 * 5) * 8 * 3 * 3  # |out| * C_in * k^2, not m times


def test_local_aggregation_counts_channels_times_taps():
    class Aggregate(torch.nn.Module):
        def forward(self, weights, value):
            return local_aggregation(weights, value, kernel_size=3, stride=1, dilation=2)

    ops = _op_flops(Aggregate(), torch.rand(1, 2, 9, 6, 5), torch.randn(1, 8, 6, 5))
    assert ops['PythonOp.LocalAggregationFunction'] == 1 * 8 * 6 * 5 * 9


def test_get_flops_tool_reports_blocks_and_a_total_that_includes_them():
    result = load_tool('get_flops').main(['configs/mask_rcnn_r50_lr.py', '--shape', '128', '128'])
    count, params, flops = result['blocks']['LocalRelation2d']
    assert count == 4 + 6 + 3  # c3-c5 bottlenecks
    assert params > 0 and flops >= result['by_operator']['PythonOp.LocalRelationFunction'] > 0
    assert result['total'][1] > result['parts']['backbone'][1] > flops
