"""The specs under specs/keras/ equal the keras.applications models they copy.

InceptionResNetV2, InceptionV3, MobileNet, MobileNetV2, MobileNetV3Small, MobileNetV3Large,
Xception, ResNet50, ResNet50V2, VGG16, VGG19, DenseNet121, EfficientNetB0, EfficientNetV2B0,
ConvNeXtTiny and NASNetMobile: same parameter count with and
without the top, same layer count, the same graph op for op, weights
transferred, outputs equal after random batch-norm statistics, the
`weights=` path, input sizes, and the layer names keras.applications gives.

ResNet101, ResNet152, DenseNet169 and DenseNet201, whose specs extend
resnet50.yaml and densenet121.yaml with other repeat counts (the generated
code is the base's with other loop bounds), are built once each at 64x64 with
the top: the parameter count (irc's at 224 too), the layer classes and names
in model.layers order, the graph op for op, the outputs with copied weights,
irc's inferred shape of every layer, and the torch module within 1e-4.

The generated model and keras.applications' are paired layer by layer by the
structure of their graphs, never by layer names or creation order: both are
walked from the output back to the input, each layer's inputs in order
(a Concatenate's inputs are its branches in order; a residual sum's are the
shortcut, then the residual, the shortcut being the operand with the shorter
chain of layers back to where the two sides fork, since keras.applications
writes `add([x, shortcut])` in Xception and `Add()([shortcut, x])` in ResNet).
keras.applications' Inception-ResNet-v2 computes a sum as one
CustomScaleLayer, `x + scale * r`; the generated code builds the same sum
from built-in layers, Rescaling(scale) on `r` then Add (no Rescaling when
the scale is 1). The walk reads both as one op `sum(scale)` and checks that
the two graphs are the same graph op for op, edge for edge; the weighted
layers are then paired by their place in it. Keras operations that are no
layers (MobileNetV3's hard sigmoid, `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`) are
nodes too, by type and constant operand.
ConvNeXt's sums are Keras' `x + r`,
an operation and no layer, in both models; its stem and downsampling layers are
keras.Sequential layers, compared by their inner layers' signatures.

keras.applications' model is randomly initialised and its batch-norm
statistics, zero-initialised biases and ConvNeXt's layer scales (1e-6) are
randomised too, so that a
misplaced or missing weight changes the output.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from irc_cnn.compiler.infer import minimum_input, without_top
from irc_cnn.compiler.pipeline import check_file
from keras.applications import (
    VGG16,
    VGG19,
    ConvNeXtTiny,
    DenseNet121,
    DenseNet169,
    DenseNet201,
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetB4,
    EfficientNetB5,
    EfficientNetB6,
    EfficientNetB7,
    EfficientNetV2B0,
    InceptionResNetV2,
    InceptionV3,
    MobileNet,
    MobileNetV2,
    MobileNetV3Large,
    MobileNetV3Small,
    NASNetMobile,
    ResNet50,
    ResNet50V2,
    ResNet101,
    ResNet152,
    Xception,
)
from keras.src.utils.naming import to_snake_case

from generated.keras_convnext_tiny import convnext_tiny
from generated.keras_densenet121 import densenet121
from generated.keras_densenet169 import densenet169
from generated.keras_densenet201 import densenet201
from generated.keras_efficientnet_b0 import efficientnet_b0
from generated.keras_efficientnet_b1 import efficientnet_b1
from generated.keras_efficientnet_b2 import efficientnet_b2
from generated.keras_efficientnet_b3 import efficientnet_b3
from generated.keras_efficientnet_b4 import efficientnet_b4
from generated.keras_efficientnet_b5 import efficientnet_b5
from generated.keras_efficientnet_b6 import efficientnet_b6
from generated.keras_efficientnet_b7 import efficientnet_b7
from generated.keras_efficientnet_v2_b0 import efficientnet_v2_b0
from generated.keras_inception_resnet_v2 import inception_resnet_v2
from generated.keras_inception_v3 import inception_v3
from generated.keras_mobilenet import mobilenet
from generated.keras_mobilenet_v2 import mobilenet_v2
from generated.keras_mobilenet_v3_large import mobilenet_v3_large
from generated.keras_mobilenet_v3_small import mobilenet_v3_small
from generated.keras_nasnet_mobile import nasnet_mobile
from generated.keras_resnet50 import resnet50
from generated.keras_resnet50v2 import resnet50v2
from generated.keras_resnet101 import resnet101
from generated.keras_resnet152 import resnet152
from generated.keras_vgg16 import vgg16
from generated.keras_vgg19 import vgg19
from generated.keras_xception import xception
from tests.conftest import KERAS_PRESETS, ROOT, calibrate_batch_norm, grouped, unnested

TOLERANCE = 1e-4
BATCH = 2


@dataclass(frozen=True)
class Network:
    spec: str
    reference: Callable
    generated: Callable
    params_top: int
    params_no_top: int
    size: int  # the default input's height and width
    features: int  # channels of the last feature map
    weighted: int  # layers with weights
    keras_minimum: int  # the smallest input keras.applications accepts without the top
    names: tuple[str, ...]  # layers keras.applications names explicitly
    classifier: str = "predictions"  # the layer whose input is the features compared


NETWORKS = {
    "inception_resnet_v2": Network(
        "specs/keras/inception_resnet_v2.yaml",
        InceptionResNetV2,
        inception_resnet_v2,
        55_873_736,
        54_336_736,
        299,
        1536,
        449,  # 244 convs, 204 batch norms, 1 dense
        75,
        (
            "mixed_5b",
            "block35_1_conv",
            "mixed_6a",
            "block17_20_conv",
            "mixed_7a",
            "block8_10_conv",
            "conv_7b",
            "conv_7b_bn",
            "conv_7b_ac",
            "avg_pool",
            "predictions",
        ),
    ),
    "xception": Network(
        "specs/keras/xception.yaml",
        Xception,
        xception,
        22_910_480,
        20_861_480,
        299,
        2048,
        81,  # 6 convs (2 + 4 shortcuts), 34 separable convs, 40 batch norms, 1 dense
        71,
        (
            "block1_conv1",
            "block1_conv1_bn",
            "block1_conv1_act",
            "block2_sepconv1",
            "block2_sepconv2_act",
            "block2_pool",
            "block5_sepconv1_act",
            "block12_sepconv3_bn",
            "block13_pool",
            "block14_sepconv2_act",
            "avg_pool",
            "predictions",
        ),
    ),
    "resnet50": Network(
        "specs/keras/resnet50.yaml",
        ResNet50,
        resnet50,
        25_636_712,
        23_587_712,
        224,
        2048,
        107,  # 53 convs, 53 batch norms, 1 dense
        32,
        (
            "conv1_pad",
            "conv1_conv",
            "conv1_bn",
            "conv1_relu",
            "pool1_pad",
            "pool1_pool",
            "conv2_block1_0_conv",
            "conv2_block1_0_bn",
            "conv2_block1_1_conv",
            "conv2_block1_3_bn",
            "conv2_block1_add",
            "conv2_block1_out",
            "conv4_block6_out",
            "conv5_block3_out",
            "avg_pool",
            "predictions",
        ),
    ),
    "inception_v3": Network(
        "specs/keras/inception_v3.yaml",
        InceptionV3,
        inception_v3,
        23_851_784,
        21_802_784,
        299,
        2048,
        189,  # 94 convs, 94 batch norms, 1 dense
        75,
        ("mixed0", "mixed3", "mixed7", "mixed8", "mixed9_0", "mixed9_1", "mixed10", "avg_pool"),
    ),
    "nasnet_mobile": Network(
        "specs/keras/nasnet_mobile.yaml",
        NASNetMobile,
        nasnet_mobile,
        5_326_716,
        4_269_716,
        224,
        1056,
        389,  # 36 convs, 160 separable convs, 192 batch norms, 1 dense
        32,
        (
            "stem_conv1",
            "stem_bn1",
            "reduction_conv_1_stem_1",
            "separable_conv_1_pad_reduction_left1_stem_1",
            "reduction_concat_stem_1",
            "adjust_relu_1_stem_2",
            "adjust_avg_pool_2_stem_2",
            "adjust_bn_stem_2",
            "normal_add_1_0",
            "normal_concat_0",
            "adjust_conv_projection_1",
            "reduction_add3_reduce_4",
            "reduction_add4_reduce_8",
            "normal_concat_12",
            "predictions",
        ),
    ),
    "mobilenet_v2": Network(
        "specs/keras/mobilenet_v2.yaml",
        MobileNetV2,
        mobilenet_v2,
        3_538_984,
        2_257_984,
        224,
        1280,
        105,  # 35 convs (17 depthwise), 52 batch norms, 1 dense
        32,
        (
            "Conv1",
            "bn_Conv1",
            "Conv1_relu",
            "expanded_conv_depthwise",
            "expanded_conv_project_BN",
            "block_1_expand",
            "block_1_pad",
            "block_2_add",
            "block_16_project_BN",
            "Conv_1",
            "Conv_1_bn",
            "out_relu",
            "predictions",
        ),
    ),
    "mobilenet": Network(
        "specs/keras/mobilenet.yaml",
        MobileNet,
        mobilenet,
        4_253_864,
        3_228_864,
        224,
        1024,
        55,  # 28 convs (13 depthwise, the classifier), 27 batch norms
        32,
        (
            "conv1",
            "conv1_bn",
            "conv1_relu",
            "conv_dw_1",
            "conv_dw_1_bn",
            "conv_pw_1_relu",
            "conv_pad_2",
            "conv_dw_7",
            "conv_pw_11_relu",
            "conv_pad_12",
            "conv_pw_13_relu",
            "dropout",
            "conv_preds",
            "reshape_2",
            "predictions",
        ),
        classifier="conv_preds",
    ),
    "mobilenet_v3_small": Network(
        "specs/keras/mobilenet_v3_small.yaml",
        MobileNetV3Small,
        mobilenet_v3_small,
        2_554_968,
        939_120,
        224,
        576,
        88,  # 54 convs (11 depthwise, 18 in 9 SE gates, conv_2 and the classifier), 34 batch norms
        32,
        (
            "conv",
            "conv_bn",
            "expanded_conv_depthwise_pad",
            "expanded_conv_depthwise",
            "expanded_conv_squeeze_excite_avg_pool",
            "expanded_conv_squeeze_excite_conv",
            "expanded_conv_squeeze_excite_relu",
            "expanded_conv_squeeze_excite_conv_1",
            "expanded_conv_squeeze_excite_mul",
            "expanded_conv_project_bn",
            "expanded_conv_1_expand",
            "expanded_conv_2_add",
            "expanded_conv_3_depthwise_pad",
            "expanded_conv_5_squeeze_excite_mul",
            "expanded_conv_6_project_bn",
            "expanded_conv_10_add",
            "conv_1",
            "conv_1_bn",
            "conv_2",
            "logits",
            "predictions",
        ),
        classifier="logits",
    ),
    "mobilenet_v3_large": Network(
        "specs/keras/mobilenet_v3_large.yaml",
        MobileNetV3Large,
        mobilenet_v3_large,
        5_507_432,
        2_996_352,
        224,
        960,
        110,  # 64 convs (15 depthwise, 16 in 8 SE gates, conv_2 and the classifier), 46 batch norms
        32,
        (
            "conv",
            "conv_bn",
            "expanded_conv_depthwise",
            "expanded_conv_project_bn",
            "expanded_conv_add",
            "expanded_conv_1_depthwise_pad",
            "expanded_conv_3_squeeze_excite_mul",
            "expanded_conv_9_add",
            "expanded_conv_10_squeeze_excite_conv_1",
            "expanded_conv_12_depthwise_pad",
            "expanded_conv_14_add",
            "conv_1",
            "conv_1_bn",
            "conv_2",
            "logits",
            "predictions",
        ),
        classifier="logits",
    ),
    "efficientnet_b0": Network(
        "specs/keras/efficientnet_b0.yaml",
        EfficientNetB0,
        efficientnet_b0,
        5_330_571,
        4_049_571,
        224,
        1280,
        132,  # 81 convs (16 depthwise, 32 in SE gates), 49 batch norms, normalization, dense
        32,
        (
            "stem_conv_pad",
            "stem_conv",
            "stem_bn",
            "stem_activation",
            "block1a_dwconv",
            "block1a_se_squeeze",
            "block1a_se_reshape",
            "block1a_se_reduce",
            "block1a_se_excite",
            "block1a_project_bn",
            "block2a_expand_conv",
            "block2a_dwconv_pad",
            "block2b_drop",
            "block2b_add",
            "block6d_add",
            "block7a_project_bn",
            "top_conv",
            "top_bn",
            "top_activation",
            "avg_pool",
            "top_dropout",
            "predictions",
        ),
    ),
    "efficientnet_v2_b0": Network(
        "specs/keras/efficientnet_v2_b0.yaml",
        EfficientNetV2B0,
        efficientnet_v2_b0,
        7_200_312,
        5_919_312,
        224,
        1280,
        151,  # 91 convs (16 depthwise, 30 in SE gates), 59 batch norms, dense
        32,
        (
            "stem_conv",
            "stem_bn",
            "stem_activation",
            "block1a_project_conv",
            "block1a_project_activation",
            "block2a_expand_conv",
            "block2b_drop",
            "block2b_add",
            "block4a_dwconv2",
            "block4a_se_excite",
            "block6h_add",
            "top_conv",
            "top_activation",
            "avg_pool",
            "top_dropout",
            "predictions",
        ),
    ),
    "resnet50v2": Network(
        "specs/keras/resnet50v2.yaml",
        ResNet50V2,
        resnet50v2,
        25_613_800,
        23_564_800,
        224,
        2048,
        103,  # 53 convs, 49 batch norms (3 per block and post_bn), 1 dense
        32,
        (
            "conv1_pad",
            "conv1_conv",
            "pool1_pool",
            "conv2_block1_preact_bn",
            "conv2_block1_0_conv",
            "conv2_block1_2_pad",
            "conv2_block1_out",
            "conv2_block3_3_conv",
            "conv4_block6_out",
            "post_bn",
            "post_relu",
            "avg_pool",
            "predictions",
        ),
    ),
    "densenet121": Network(
        "specs/keras/densenet121.yaml",
        DenseNet121,
        densenet121,
        8_062_504,
        7_037_504,
        224,
        1024,
        242,  # 120 convs, 121 batch norms, 1 dense
        32,
        (
            "conv1_conv",
            "conv1_bn",
            "conv1_relu",
            "pool1",
            "conv2_block1_0_bn",
            "conv2_block1_1_conv",
            "conv2_block1_2_conv",
            "conv2_block1_concat",
            "pool2_conv",
            "pool2_pool",
            "conv5_block16_concat",
            "bn",
            "relu",
            "avg_pool",
            "predictions",
        ),
    ),
    "convnext_tiny": Network(
        "specs/keras/convnext_tiny.yaml",
        ConvNeXtTiny,
        convnext_tiny,
        28_589_128,
        27_820_128,  # with keras' LayerNormalization after the pooling (spec's no_top)
        224,
        768,
        96,  # 37 dense, 19 layer norms, 18 grouped convs, 18 layer scales, 4 Sequential
        32,
        (
            "convnext_tiny_prestem_normalization",
            "convnext_tiny_stem",
            "convnext_tiny_stage_0_block_0_depthwise_conv",
            "convnext_tiny_stage_0_block_0_pointwise_conv_1",
            "convnext_tiny_stage_0_block_0_gelu",
            "convnext_tiny_stage_0_block_0_layer_scale",
            "convnext_tiny_stage_0_block_0_identity",
            "convnext_tiny_downsampling_block_0",
            "convnext_tiny_stage_2_block_8_pointwise_conv_2",
            "convnext_tiny_downsampling_block_2",
            "convnext_tiny_stage_3_block_2_layernorm",
            "convnext_tiny_head_gap",
            "convnext_tiny_head_layernorm",
            "convnext_tiny_head_dense",
        ),
        classifier="convnext_tiny_head_dense",
    ),
    "vgg16": Network(
        "specs/keras/vgg16.yaml",
        VGG16,
        vgg16,
        138_357_544,
        14_714_688,
        224,
        512,
        16,  # 13 convs, 3 dense
        32,
        (
            "block1_conv1",
            "block1_pool",
            "block3_conv3",
            "block5_pool",
            "flatten",
            "fc1",
            "fc2",
            "predictions",
        ),
    ),
    "vgg19": Network(
        "specs/keras/vgg19.yaml",
        VGG19,
        vgg19,
        143_667_240,
        20_024_384,
        224,
        512,
        19,  # 16 convs, 3 dense
        32,
        (
            "block1_conv1",
            "block1_pool",
            "block3_conv4",
            "block5_pool",
            "flatten",
            "fc1",
            "fc2",
            "predictions",
        ),
    ),
}


@dataclass(frozen=True)
class Preset:
    spec: str
    reference: Callable
    generated: Callable
    params: int  # keras.applications' documented count; the built model's is compared too


# keras.applications' deeper networks: specs that extend resnet50.yaml, densenet121.yaml
# and efficientnet_b0.yaml
PRESETS = {
    "resnet101": Preset("specs/keras/resnet101.yaml", ResNet101, resnet101, 44_707_176),
    "resnet152": Preset("specs/keras/resnet152.yaml", ResNet152, resnet152, 60_419_944),
    "densenet169": Preset("specs/keras/densenet169.yaml", DenseNet169, densenet169, 14_307_880),
    "densenet201": Preset("specs/keras/densenet201.yaml", DenseNet201, densenet201, 20_242_984),
    **{
        f"efficientnet_b{n}": Preset(
            f"specs/keras/efficientnet_b{n}.yaml", reference, built, params
        )
        for n, reference, built, params in (
            (1, EfficientNetB1, efficientnet_b1, 7_856_239),
            (2, EfficientNetB2, efficientnet_b2, 9_177_569),
            (3, EfficientNetB3, efficientnet_b3, 12_320_535),
            (4, EfficientNetB4, efficientnet_b4, 19_466_823),
            (5, EfficientNetB5, efficientnet_b5, 30_562_527),
            (6, EfficientNetB6, efficientnet_b6, 43_265_143),
            (7, EfficientNetB7, efficientnet_b7, 66_658_687),
        )
    },
}
PRESET_SHAPE = (64, 64, 3)  # keras.applications takes the top at any size >= 32 without weights


# -- the structural walk -----------------------------------------------------------


def _producer(tensor):
    return tensor._keras_history.operation


def _inputs(layer) -> list:
    (node,) = layer._inbound_nodes  # every layer of these models is called once
    return list(node.input_tensors)


def _activation(layer) -> str:
    return keras.activations.serialize(layer.activation)


def _is_layer(operation) -> bool:
    """A layer, not a Keras operation such as MobileNetV3's `x + 3.0` (keras.ops' Add and
    Multiply, in model.operations but not model.layers, with the layers' class names)."""
    return isinstance(operation, keras.layers.Layer)


def _weights(operation) -> list:
    return operation.weights if _is_layer(operation) else []


def _signature(layer) -> tuple:
    """What a layer computes, independent of its name, in a form both models share; an
    operation by its type and its constant operands (`("Add", 3.0)` for `x + 3.0`); a
    nested keras.Sequential (ConvNeXt's stem) is its layers' signatures in order."""
    kind = type(layer).__name__
    if not _is_layer(layer):
        (node,) = layer._inbound_nodes
        constants = (float(a) for a in node.arguments.args if not isinstance(a, keras.KerasTensor))
        return ("operation", kind, *(a for a in constants))
    if kind == "InputLayer":  # height and width: see the tests of input sizes
        return ("input", layer.batch_shape[-1])
    if kind == "Conv2D":
        return (
            "conv",
            layer.filters,
            tuple(layer.kernel_size),
            tuple(layer.strides),
            layer.padding,
            tuple(layer.dilation_rate),
            layer.use_bias,
            _activation(layer),
            layer.data_format,
            layer.groups,
        )
    if kind == "SeparableConv2D":
        return (
            "sepconv",
            layer.filters,
            tuple(layer.kernel_size),
            tuple(layer.strides),
            layer.padding,
            layer.depth_multiplier,
            layer.use_bias,
            _activation(layer),
        )
    if kind == "DepthwiseConv2D":
        return (
            "dwconv",
            tuple(layer.kernel_size),
            tuple(layer.strides),
            layer.padding,
            layer.depth_multiplier,
            layer.use_bias,
            _activation(layer),
        )
    if kind == "ReLU":
        max_value = None if layer.max_value is None else float(layer.max_value)
        return ("relu", max_value, float(layer.negative_slope), float(layer.threshold))
    if kind == "ZeroPadding2D":
        return ("pad", tuple(map(tuple, layer.padding)))
    if kind == "Cropping2D":
        return ("crop", tuple(map(tuple, layer.cropping)))
    if kind == "BatchNormalization":
        return ("bn", layer.axis % 4, layer.epsilon, layer.momentum, layer.center, layer.scale)
    if kind == "Activation":
        return ("activation", _activation(layer))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return (kind, tuple(layer.pool_size), tuple(layer.strides), layer.padding)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return (kind, layer.keepdims)
    if kind == "Concatenate":
        return ("concat", layer.axis % 4)
    if kind == "Dense":
        return ("dense", layer.units, layer.use_bias, _activation(layer))
    if kind == "Flatten":
        return ("flatten", layer.data_format)
    if kind == "Reshape":
        return ("reshape", tuple(layer.target_shape))
    if kind == "Dropout":
        return ("dropout", float(layer.rate), layer.noise_shape, layer.seed)
    if kind == "Multiply":  # a gate: the path, then its scales
        return ("multiply",)
    if kind == "Rescaling":  # preprocessing (an Inception-ResNet-v2 sum's is in `structure`)
        return ("rescaling", float(layer.scale), float(layer.offset))
    if kind == "LayerNormalization":
        axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
        return ("layernorm", axis, layer.epsilon, layer.center, layer.scale)
    if kind == "Normalization":  # constants (None: weights of its own)
        mean, variance = (np.asarray(v).tolist() for v in (layer.input_mean, layer.input_variance))
        axis = tuple(a % 4 for a in layer.axis)  # EfficientNet says 3, ConvNeXt -1
        return ("normalization", axis, str(mean), str(variance), layer.invert)
    if kind == "LayerScale":  # keras.applications' ConvNeXt layer, in both models
        return ("layerscale", float(layer.init_values), layer.projection_dim)
    if kind == "Sequential":
        return ("sequential", tuple(_signature(inner) for inner in layer.layers))
    if kind == "CustomScaleLayer":  # keras.applications: inputs[0] + inputs[1] * scale
        return ("sum", float(layer.scale), "layer")
    raise AssertionError(f"unexpected layer {layer.name!r} of type {kind}")


def _to_fork(layer) -> int:
    """How many layers lead back from `layer` to one whose output feeds several layers."""
    steps = 0
    while len(layer._outbound_nodes) < 2 and type(layer).__name__ != "InputLayer":
        inputs = _inputs(layer)
        if len(inputs) != 1:  # a concat inside the branch: the shortcut is shorter still
            return steps + 1_000
        layer, steps = _producer(inputs[0]), steps + 1
    return steps


def structure(model) -> tuple[list[tuple], list]:
    """The graph in canonical order, and the layer behind each entry.

    Entries are (signature, positions of the inputs) in post-order from the
    output, inputs visited in order. A generated `Add([x, Rescaling(s)(r)])`
    becomes ("sum", s, "layer") with inputs (x, r); a bare `Add([x, r])` is ("sum",
    1.0, "layer"); Keras' `x + r` (keras.ops' Add operation, no layer: ConvNeXt's) is
    ("sum", 1.0, "operation").
    """
    order: list[tuple] = []
    owners: list = []
    position: dict[int, int] = {}

    def operands(layer) -> tuple[list, tuple]:
        if not isinstance(layer, keras.layers.Add):
            return [_producer(t) for t in _inputs(layer)], _signature(layer)
        shortcut, residual = sorted((_producer(t) for t in _inputs(layer)), key=_to_fork)
        scale = 1.0
        if type(residual).__name__ == "Rescaling":
            assert float(residual.offset) == 0.0, residual.name
            assert len(residual._outbound_nodes) == 1, residual.name
            scale = float(residual.scale)
            (residual,) = (_producer(t) for t in _inputs(residual))
        made = "layer" if isinstance(layer, keras.layers.Layer) else "operation"
        return [shortcut, residual], ("sum", scale, made)

    (output,) = model.outputs
    stack: list[tuple[object, bool]] = [(_producer(output), False)]
    while stack:
        layer, expanded = stack.pop()
        if id(layer) in position:
            continue
        parents, signature = operands(layer) if type(layer).__name__ != "InputLayer" else ([], None)
        if not expanded:
            stack.append((layer, True))
            stack.extend((p, False) for p in reversed(parents) if id(p) not in position)
            continue
        if signature is None:
            signature = _signature(layer)
        position[id(layer)] = len(order)
        order.append((signature, tuple(position[id(p)] for p in parents)))
        owners.append(layer)
    return order, owners


def pair_weighted_layers(reference, generated) -> list[tuple]:
    """(reference layer, generated layer) for every layer with weights, by structure."""
    ref_graph, ref_layers = structure(reference)
    gen_graph, gen_layers = structure(generated)
    assert len(ref_graph) == len(gen_graph)
    for i, (a, b) in enumerate(zip(ref_graph, gen_graph)):
        assert a == b, (
            f"graphs differ at op {i}: {ref_layers[i].name} {a} vs {gen_layers[i].name} {b}"
        )
    pairs = [(a, b) for a, b in zip(ref_layers, gen_layers) if _weights(a) or _weights(b)]
    # Complete and one-to-one: every weighted layer of either model, exactly once.
    for model, side in ((reference, 0), (generated, 1)):
        weighted = {id(layer) for layer in model.layers if layer.weights}
        paired = [id(pair[side]) for pair in pairs]
        assert len(paired) == len(set(paired)) == len(weighted)
        assert set(paired) == weighted
    for a, b in pairs:
        assert type(a) is type(b), (a.name, b.name)
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights], (a.name, b.name)
        # An unnamed weight (LayerScale's) is numbered per model: `variable_3`.
        names = ([re.sub(r"_\d+\Z", "", w.name) for w in layer.weights] for layer in (a, b))
        assert next(names) == next(names), (a.name, b.name)
    return pairs


def _weights(operation) -> list:
    """A layer's weights; none for an operation that is not a layer (keras.ops' Add)."""
    return getattr(operation, "weights", [])


def randomise(model, seed: int, size: int | None = None) -> None:
    """Random biases and batch-norm offsets, then batch-norm statistics from the data
    each layer sees, perturbed (conftest.calibrate_batch_norm); kernels keep their init.
    `size`: the input's side, where the model's input takes any."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        scale = type(layer).__name__ == "LayerScale"  # 1e-6 would hide its block's weights
        for variable, value in zip(layer.weights, layer.get_weights()):
            if variable.name in ("beta", "bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            elif scale:
                value = rng.uniform(0.2, 1.0, value.shape)
            values.append(value.astype("float32"))
        layer.set_weights(values)
    calibrate_batch_norm(model, rng, (size, size, 3))


def copy_weights(reference, generated) -> int:
    pairs = pair_weighted_layers(reference, generated)
    for a, b in pairs:
        b.set_weights(a.get_weights())
    return len(pairs)


def max_difference(a, b, shape) -> float:
    x = np.random.default_rng(7).uniform(-1.0, 1.0, (BATCH, *shape)).astype("float32")
    ya, yb = np.asarray(a(x, training=False)), np.asarray(b(x, training=False))
    assert ya.shape == yb.shape
    assert np.all(np.isfinite(ya))
    # A degenerate model would agree trivially: two images must give different outputs.
    assert not np.array_equal(ya[0], ya[1])
    return float(np.max(np.abs(ya - yb)))


# -- models, built once per module -------------------------------------------------


def _pair(network: Network, seed: int, **kwargs):
    """keras.applications' model (randomised) and the generated one, both ending in
    logits: with statistics from the data, a softmax can saturate to the same one-hot
    for two images (ResNet-50's did), which would compare nothing."""
    keras.backend.clear_session()
    kwargs.setdefault("classifier_activation", None)
    reference = network.reference(weights=None, **kwargs)
    randomise(reference, seed, network.size)
    return reference, network.generated(**kwargs)


@pytest.fixture(scope="module", params=grouped(sorted(NETWORKS), "keras_applications"))
def network(request) -> Network:
    return NETWORKS[request.param]


@pytest.fixture(scope="module")
def top(network):
    return _pair(network, 1)


# -- tests -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_irc_counts_what_keras_applications_has(name):
    network = NETWORKS[name]
    result = check_file(network.spec)
    assert result.ok
    assert result.graph.params == network.params_top
    assert result.graph.params_without_top() == network.params_no_top


@pytest.mark.parametrize("name", sorted(NETWORKS) + sorted(PRESETS))
def test_signature_is_keras_applications(name):
    network = NETWORKS.get(name) or PRESETS[name]
    ours = inspect.signature(network.generated).parameters
    theirs = inspect.signature(network.reference).parameters
    names = [
        "include_top",
        "weights",
        "input_tensor",
        "input_shape",
        "pooling",
        "classes",
        "classifier_activation",
    ]
    assert list(ours)[: len(names)] == names
    for argument in names[2:]:
        assert ours[argument].default == theirs[argument].default, argument
    assert ours["weights"].default is None  # no download: a path or nothing


@pytest.mark.slow
def test_parameter_and_layer_counts(network, top):
    reference, generated = top
    assert generated.count_params() == reference.count_params() == network.params_top
    # Inception-ResNet-v2's sums are one CustomScaleLayer there, Rescaling + Add here.
    extra = sum(type(layer).__name__ == "Rescaling" for layer in generated.layers)
    extra -= sum(type(layer).__name__ == "Rescaling" for layer in reference.layers)
    assert len(generated.layers) == len(reference.layers) + extra
    if not extra:  # then the classes too, in model.layers order
        kinds = ([type(layer).__name__ for layer in m.layers] for m in (reference, generated))
        assert next(kinds) == next(kinds)
    no_top = network.generated(include_top=False, pooling="avg")
    assert no_top.count_params() == network.params_no_top


@pytest.mark.slow
def test_keras_applications_layer_names(network, top):
    reference, generated = top
    for name in network.names:
        ours, theirs = generated.get_layer(name), reference.get_layer(name)
        assert type(ours) is type(theirs) or type(theirs).__name__ == "CustomScaleLayer", name
        assert ours.output.shape == theirs.output.shape, name


@pytest.mark.slow
def test_structure_pairs_every_weighted_layer(network, top):
    reference, generated = top
    pairs = pair_weighted_layers(reference, generated)
    assert len(pairs) == network.weighted


@pytest.mark.slow
def test_inception_resnet_v2_sum_scales():
    _, generated = _pair(NETWORKS["inception_resnet_v2"], 1)
    # The sums: 39 scaled (10 x 0.17, 20 x 0.1, 9 x 0.2), the last block's by 1.0.
    graph, _ = structure(generated)
    sums = [signature[1] for signature, _ in graph if signature[0] == "sum"]
    assert sums == [0.17] * 10 + [0.1] * 20 + [0.2] * 9 + [1.0]


@pytest.mark.slow
def test_outputs_agree_with_top(network, top):
    reference, generated = top
    copy_weights(reference, generated)
    shape = (network.size, network.size, 3)
    assert max_difference(reference, generated, shape) <= TOLERANCE
    # and the classifier's input, so that the features agree on their own
    features = [keras.Model(m.input, m.get_layer(network.classifier).input) for m in top]
    assert max_difference(*features, shape) <= TOLERANCE


@pytest.mark.slow
def test_outputs_agree_without_top_avg_pooled(network):
    reference, generated = _pair(network, 2, include_top=False, pooling="avg")
    copy_weights(reference, generated)
    assert generated.output_shape == reference.output_shape == (None, network.features)
    # any size without the top, but NASNet's default size (`builder.fixed_size`)
    fixed = check_file(network.spec).spec.builder.fixed_size
    size = network.size if fixed else None
    assert reference.input_shape == (None, size, size, 3)
    assert generated.input_shape == reference.input_shape
    assert max_difference(reference, generated, (network.size, network.size, 3)) <= TOLERANCE


@pytest.mark.slow
def test_outputs_agree_at_keras_minimum(network):
    """At the smallest input keras.applications accepts (75, 71, 32)."""
    size = network.keras_minimum
    reference, generated = _pair(network, 3, include_top=False, input_shape=(size, size, 3))
    copy_weights(reference, generated)
    assert generated.output_shape == reference.output_shape
    assert max_difference(reference, generated, (size, size, 3)) <= TOLERANCE


# Inputs at which keras' correct_pad pads some map on both sides (an odd side on the way).
UNEVEN_SIZES = {
    "mobilenet_v2": 200,
    "mobilenet_v3_small": 97,
    "mobilenet_v3_large": 97,
    "efficientnet_b0": 97,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(UNEVEN_SIZES))
def test_input_dependent_padding_equals_keras(name):
    """keras.applications' correct_pad pads by the size of the map it pads: at an input
    whose sides are not multiples of 32, `pad correct` pads as keras does at every
    ZeroPadding2D (irc's shapes too), ends at keras' size (7x7 at 200, where a fixed
    padding ends at 6x6) and computes the same. Built with no input size, keras pads as
    at an even side whatever the size; the generated model does the same."""
    network, size = NETWORKS[name], UNEVEN_SIZES[name]
    shape = (size, size, 3)
    reference, generated = _pair(network, 6, include_top=False, input_shape=shape)
    copy_weights(reference, generated)
    pads = [layer for layer in reference.layers if type(layer).__name__ == "ZeroPadding2D"]
    # an odd side on the way: padded above as much as below, which no fixed padding does
    assert any(top == bottom for (top, bottom), _ in (layer.padding for layer in pads))
    graph = check_file(network.spec, input_size=(size, size)).graph
    shapes = {layer.name: layer.shape for layer in graph.layers}
    for layer in pads:
        ours = generated.get_layer(layer.name)
        assert ours.padding == layer.padding, layer.name
        assert ours.output.shape == layer.output.shape, layer.name
        assert shapes[layer.name] == tuple(layer.output.shape[1:]), layer.name
    assert generated.output_shape == reference.output_shape
    assert shapes[generated.layers[-1].name] == reference.output_shape[1:]
    assert max_difference(reference, generated, shape) <= TOLERANCE
    reference, generated = _pair(network, 7, include_top=False)
    copy_weights(reference, generated)
    assert max_difference(reference, generated, shape) <= TOLERANCE


@pytest.mark.slow
def test_weights_files_load_by_order_in_keras_and_torch(network, top, tmp_path):
    """keras.applications' published layout, Keras' legacy HDF5 weights (read by
    position, names not used), through `weights=`: into the Keras model as
    keras.applications loads it, outputs equal and every weight where the structural
    pairing puts it. Then keras.applications' Keras 3 `.weights.h5`, which Keras
    matches by layer class and position in model.layers (ordered by the graph, not
    by names or creation order, so the generated model's extra weightless layers do
    not disturb it), into the same model, its weights zeroed first. Into the torch module by its
    KERAS_WEIGHT_ORDER, every tensor equal to the Keras model's layer of its name.
    Tensors, not outputs: with keras.applications' initial
    kernels EfficientNet-B0's logits reach 1e5, where float32 in the two frameworks
    differs by 7e-4 relative. ConvNeXt's stem and downsampling layers are each one
    keras.Sequential, which the file holds as one layer with its layers' weights."""
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("torch")
    from irc_cnn.backends.torch.weights import keras_weights
    from keras.src.legacy.saving import legacy_h5_format

    from tests.test_torch_backend import torch_builder

    reference, _ = top
    path = tmp_path / "keras_applications.h5"
    with h5py.File(path, "w") as out:
        legacy_h5_format.save_weights_to_hdf5_group(out, reference)
    generated = network.generated(weights=str(path), classifier_activation=None)
    assert max_difference(reference, generated, (network.size, network.size, 3)) <= 1e-5
    pairs = pair_weighted_layers(reference, generated)
    for a, b in pairs:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    reference.save_weights(tmp_path / "keras_applications.weights.h5")
    for _, b in pairs:
        b.set_weights([np.zeros_like(w) for w in b.get_weights()])
    generated.load_weights(tmp_path / "keras_applications.weights.h5")
    for a, b in pairs:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    builder = torch_builder(check_file(network.spec))
    loaded = keras_weights(builder(weights=str(path), classifier_activation=None))
    weighted = [layer for layer in unnested(generated.layers) if layer.weights]
    assert sorted(loaded) == sorted(layer.name for layer in weighted)
    for layer in weighted:
        for ours, theirs in zip(loaded[layer.name], layer.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_minimum_input_is_refused_below(name):
    """irc computes the smallest input the network's arithmetic takes; below it, a ValueError.

    Inception-ResNet-v2's is keras.applications' own 75. Xception's (7) and
    ResNet50's (1) are smaller than the 71 and 32 keras.applications demands
    by policy: the generated builders accept every size the network can take.
    """
    network = NETWORKS[name]
    spec = check_file(network.spec).spec
    smallest = minimum_input(without_top(spec))
    expected = {"inception_resnet_v2": 75, "xception": 7, "resnet50": 1, "vgg16": 32, "vgg19": 32}
    expected |= {"densenet121": 29, "resnet50v2": 1, "inception_v3": 75, "mobilenet_v2": 1}
    expected |= {
        "mobilenet": 31,
        "mobilenet_v3_small": 1,
        "mobilenet_v3_large": 1,
        "convnext_tiny": 32,
        "efficientnet_b0": 1,
        "efficientnet_v2_b0": 1,
        "nasnet_mobile": 3,
    }
    assert smallest == expected[name]
    assert smallest <= network.keras_minimum
    if smallest > 1:
        with pytest.raises(ValueError, match=f"at least {smallest} "):
            network.generated(include_top=False, input_shape=(smallest - 1, smallest - 1, 3))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_minimum_input_builds(name):
    network = NETWORKS[name]
    smallest = minimum_input(without_top(check_file(network.spec).spec))
    keras.backend.clear_session()
    model = network.generated(include_top=False, input_shape=(smallest, smallest, 3))
    assert model.output_shape == (None, 1, 1, network.features)


def test_74_is_refused_like_keras_applications():
    with pytest.raises(ValueError, match=r"at least 75 .*\(74, 74, 3\)"):
        inception_resnet_v2(include_top=False, input_shape=(74, 74, 3))
    with pytest.raises(ValueError, match="75"):
        InceptionResNetV2(weights=None, include_top=False, input_shape=(74, 74, 3))


# -- the deeper presets, built once each at a small input --------------------------


def test_presets_are_the_ones_other_tests_leave_out():
    """conftest.KERAS_PRESETS are left out of the tests that build every spec whole."""
    assert {ROOT / preset.spec for preset in PRESETS.values()} == KERAS_PRESETS


@pytest.fixture(scope="module", params=grouped(sorted(PRESETS), "keras_applications"))
def preset(request):
    """keras.applications' model (randomised as above) and the generated one, both at
    PRESET_SHAPE and giving logits; built once per module."""
    network = PRESETS[request.param]
    keras.backend.clear_session()
    kwargs = {"input_shape": PRESET_SHAPE, "classifier_activation": None}
    reference = network.reference(weights=None, **kwargs)
    randomise(reference, 4)
    return network, reference, network.generated(**kwargs)


@pytest.mark.slow
def test_preset_parameter_counts(preset):
    network, reference, generated = preset
    expected = reference.count_params()  # the same at every input: the top pools globally
    assert expected == network.params
    assert check_file(network.spec).graph.params == expected  # irc's, at the spec's 224
    assert generated.count_params() == expected


def _named_by_keras(layer) -> bool:
    """A name Keras made up from the class (zero_padding2d_1), where the builder gave none."""
    return re.fullmatch(rf"{to_snake_case(type(layer).__name__)}(_\d+)?", layer.name) is not None


@pytest.mark.slow
def test_preset_layers_are_keras_applications_in_order(preset):
    """Classes and names in model.layers order, the input aside. Layers keras.applications
    leaves unnamed have names of the spec's: DenseNet's two stem paddings (conv1_pad,
    pool1_pad) and EfficientNet's preprocessing (rescaling, normalization)."""
    _, reference, generated = preset
    theirs, ours = (
        [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        for model in (reference, generated)
    )
    assert [type(layer) for layer in ours] == [type(layer) for layer in theirs]
    named = [(a.name, b.name) for a, b in zip(ours, theirs) if not _named_by_keras(b)]
    assert [a for a, _ in named] == [b for _, b in named]
    unnamed = {type(b).__name__ for b in theirs if _named_by_keras(b)}
    assert unnamed <= {"ZeroPadding2D", "Rescaling", "Normalization"}


@pytest.mark.slow
def test_preset_outputs_and_shapes(preset):
    network, reference, generated = preset
    copy_weights(reference, generated)  # the graphs equal op for op, every weight paired
    assert max_difference(reference, generated, PRESET_SHAPE) <= TOLERANCE
    graph = check_file(network.spec, input_size=PRESET_SHAPE[:2]).graph
    for layer in graph.layers:
        assert tuple(generated.get_layer(layer.name).output.shape[1:]) == layer.shape, layer.name
    assert len(graph.layers) == len(generated.layers) - 1  # every layer but the input


@pytest.mark.slow
def test_preset_torch_module_equals_keras(preset, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("h5py")
    from tests.test_torch_backend import assert_torch_equals_keras, torch_builder

    network, _, _ = preset
    # A model of its own, with the generated code's initial kernels: with
    # keras.applications' (copied in above), EfficientNet-B7's calibrated logits reach
    # 1e5 at 64x64, and float32 rounding in the two frameworks then differs by 75%.
    generated = network.generated(input_shape=PRESET_SHAPE, classifier_activation=None)
    randomise(generated, 5)
    model = torch_builder(check_file(network.spec))(classifier_activation=None)
    assert assert_torch_equals_keras(generated, model, PRESET_SHAPE, tmp_path) <= TOLERANCE
