"""FLOP counting for models holding mmlocalrel's custom ops.

mmengine's FlopAnalyzer traces the model with torch.jit; our ops appear in the trace as ``prim::PythonOp.<Function>``
nodes, which it counts as 0 (and warns about). These handles count them, in mmengine's unit: one multiply-add = 1.
Formulas (out = the op's output, k = kernel size):

- lip2d: 2·k²·|out| (the exp-weighted sum and the sum of weights over each window)
- region_conv: |out|·C_in·k² (one convolution: each output pixel uses one region's kernel)
- local_relation: B·H_out·W_out·(G·k² + C·k²) (G·k² composability logits, then aggregation of C channels)
- local_aggregation: B·H_out·W_out·C·k²
"""
from math import prod

from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape


def _scalars(outputs):
    # the op's non-tensor arguments (kernel size, stride, ...), in call order
    return outputs[0].node().scalar_args()


def lip2d_flops(inputs, outputs):
    kernel_size = _scalars(outputs)[0]
    taps = prod(kernel_size) if isinstance(kernel_size, (tuple, list)) else kernel_size * kernel_size
    return 2 * taps * prod(get_shape(outputs[0]))


def region_conv_flops(inputs, outputs):
    kernels = get_shape(inputs[1])  # (B, m, C_out, C_in, k, k)
    return prod(get_shape(outputs[0])) * kernels[3] * kernels[4] * kernels[5]


def local_relation_flops(inputs, outputs):
    groups, taps = get_shape(inputs[3])  # geo_prior (G, k*k)
    batch, channels, height, width = get_shape(outputs[0])
    return batch * height * width * (groups + channels) * taps


def local_aggregation_flops(inputs, outputs):
    taps = get_shape(inputs[0])[2]  # weights (B, G, k*k, H_out, W_out)
    return prod(get_shape(outputs[0])) * taps


HANDLES = {
    'prim::PythonOp.Lip2dFunction': lip2d_flops,
    'prim::PythonOp.RegionConvFunction': region_conv_flops,
    'prim::PythonOp.LocalRelationFunction': local_relation_flops,
    'prim::PythonOp.LocalAggregationFunction': local_aggregation_flops,
}


def flop_analyzer(model, inputs):
    """mmengine's FlopAnalyzer with the custom-op handles set."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(**HANDLES)
    return analyzer
