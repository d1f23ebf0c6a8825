"""The generated keras-spec models beside keras.applications', in one run.

    python benchmarks/keras_applications.py [--builds 7] [--rounds 15] [--network NAME ...]

For each network (every spec under specs/keras/; all by default):
build time: each model built `--builds` times, alternating which goes first
in each pair, after one unmeasured warm-up build of each; the Keras session
is cleared before every build. Inference: both models hold the same weights
(keras.applications' random initialisation, saved to a .weights.h5 file and
loaded into the generated model through its `weights=` argument), batch 8 at
the network's default input size, `predict_on_batch` (Keras' compiled
predict function), warmed up, then `--rounds` rounds of one timed call per
model, alternating which goes first, so that load from elsewhere on the
machine hits both. Reported: the median of each measure and, as the ratio
generated / keras.applications, the median of the per-pair ratios. Prints a
markdown table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
from keras.applications import (
    VGG16,
    VGG19,
    ConvNeXtTiny,
    DenseNet121,
    EfficientNetB0,
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
    Xception,
)

from generated.keras_convnext_tiny import convnext_tiny
from generated.keras_densenet121 import densenet121
from generated.keras_efficientnet_b0 import efficientnet_b0
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
from generated.keras_vgg16 import vgg16
from generated.keras_vgg19 import vgg19
from generated.keras_xception import xception

BATCH = 8
# name -> (keras.applications builder, generated builder, input size)
NETWORKS = {
    "InceptionResNetV2": (InceptionResNetV2, inception_resnet_v2, 299),
    "Xception": (Xception, xception, 299),
    "ResNet50": (ResNet50, resnet50, 224),
    "ResNet50V2": (ResNet50V2, resnet50v2, 224),
    "InceptionV3": (InceptionV3, inception_v3, 299),
    "VGG16": (VGG16, vgg16, 224),
    "VGG19": (VGG19, vgg19, 224),
    "DenseNet121": (DenseNet121, densenet121, 224),
    "MobileNet": (MobileNet, mobilenet, 224),
    "MobileNetV2": (MobileNetV2, mobilenet_v2, 224),
    "MobileNetV3Small": (MobileNetV3Small, mobilenet_v3_small, 224),
    "MobileNetV3Large": (MobileNetV3Large, mobilenet_v3_large, 224),
    "ConvNeXtTiny": (ConvNeXtTiny, convnext_tiny, 224),
    "EfficientNetB0": (EfficientNetB0, efficientnet_b0, 224),
    "EfficientNetV2B0": (EfficientNetV2B0, efficientnet_v2_b0, 224),
    "NASNetMobile": (NASNetMobile, nasnet_mobile, 224),
}


def timed_build(build) -> float:
    keras.backend.clear_session()
    gc.collect()
    start = time.perf_counter()
    build()
    return time.perf_counter() - start


def build_times(build_keras, build_generated, builds: int) -> dict[str, list[float]]:
    times = {"keras": [], "generated": []}
    timed_build(build_keras), timed_build(build_generated)  # warm-up
    for i in range(builds):
        order = [("keras", build_keras), ("generated", build_generated)]
        for name, build in order if i % 2 == 0 else order[::-1]:
            times[name].append(timed_build(build))
    return times


def throughputs(
    build_keras, build_generated, size: int, rounds: int
) -> tuple[dict[str, list[float]], float]:
    keras.backend.clear_session()
    reference = build_keras()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "keras_applications.weights.h5")
        reference.save_weights(path)
        generated = build_generated(weights=path)
    models = {"keras": reference, "generated": generated}
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (BATCH, size, size, 3)).astype("float32")
    outputs = {name: model.predict_on_batch(x) for name, model in models.items()}  # warm-up
    for _ in range(2):
        for model in models.values():
            model.predict_on_batch(x)
    difference = float(np.max(np.abs(outputs["keras"] - outputs["generated"])))
    rates: dict[str, list[float]] = {name: [] for name in models}
    for i in range(rounds):
        names = list(models) if i % 2 == 0 else list(models)[::-1]
        for name in names:
            start = time.perf_counter()
            models[name].predict_on_batch(x)
            rates[name].append(BATCH / (time.perf_counter() - start))
    return rates, difference


def paired_ratio(values: dict[str, list[float]]) -> float:
    """Median over rounds of generated / keras, each ratio from one adjacent pair.

    Robust to load that changes during the run (the machine may be shared):
    both members of a pair ran under the same load.
    """
    return statistics.median(g / k for k, g in zip(values["keras"], values["generated"]))


def rows(network: str, times, rates) -> list[str]:
    bk, bg = statistics.median(times["keras"]), statistics.median(times["generated"])
    tk, tg = statistics.median(rates["keras"]), statistics.median(rates["generated"])
    return [
        (
            f"| {network} | build time, s (median of {len(times['keras'])}) | {bk:.2f} | {bg:.2f} "
            f"| {paired_ratio(times):.3f} | <= 1.05 |"
        ),
        (
            f"| {network} | CPU inference, images/s, batch {BATCH} (median of {len(rates['keras'])}) "
            f"| {tk:.2f} | {tg:.2f} | {paired_ratio(rates):.3f} | >= 0.98 |"
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--network", action="append", choices=sorted(NETWORKS))
    args = parser.parse_args()
    import tensorflow as tf

    print(
        f"{date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, Keras {keras.__version__} "
        f"({keras.backend.backend()} {tf.__version__}), NumPy {np.__version__}"
    )
    table = [
        "| network | measure | keras.applications | generated | generated / keras | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for network in args.network or list(NETWORKS):
        reference, generated, size = NETWORKS[network]
        build_keras, build_generated = partial(reference, weights=None), generated
        times = build_times(build_keras, build_generated, args.builds)
        rates, difference = throughputs(build_keras, build_generated, size, args.rounds)
        print(f"{network}: max |keras - generated| on the benchmark batch: {difference:.3g}")
        print("  build times, s:", {k: [round(t, 2) for t in v] for k, v in times.items()})
        print("  images/s:", {k: [round(r, 2) for r in v] for k, v in rates.items()})
        table += rows(network, times, rates)
    print()
    print("\n".join(table))


if __name__ == "__main__":
    main()
