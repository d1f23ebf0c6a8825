"""Keras build time of the generated Inception-ResNet-v2 beside keras.applications'.

Run from the repository root: `python benchmarks/build_time.py`. Both models
are built alternately in one process (after one warm-up build each), so the
ratio is fair on a shared, noisy machine; medians are reported.

The two are different networks (the seed's layout has 58.8 M parameters,
keras.applications' slim layout 55.9 M); the question is only whether the
generated code costs more to build than a hand-written builder of similar size.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from generated.inception_resnet_v2 import create_inception_resnet_v2  # noqa: E402

ROUNDS = 5


def build(factory) -> float:
    keras.backend.clear_session()
    start = time.perf_counter()
    factory()
    return time.perf_counter() - start


def main() -> None:
    builders = {
        "generated create_inception_resnet_v2()": create_inception_resnet_v2,
        "keras.applications.InceptionResNetV2(weights=None)": lambda: (
            keras.applications.InceptionResNetV2(weights=None)
        ),
    }
    for factory in builders.values():  # warm-up: imports, graph tracing caches
        build(factory)
    times: dict[str, list[float]] = {name: [] for name in builders}
    for _ in range(ROUNDS):
        for name, factory in builders.items():
            times[name].append(build(factory))
    medians = {name: statistics.median(values) for name, values in times.items()}
    generated, reference = medians.values()
    print("| model | median build time (s) |")
    print("|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    print(f"| ratio generated / keras.applications | {generated / reference:.2f} |")


if __name__ == "__main__":
    main()
