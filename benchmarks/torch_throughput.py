"""CPU inference throughput of the generated torch Inception-ResNet-v2 against Keras and timm.

    python benchmarks/torch_throughput.py --timm-python /tmp/benchvenv/bin/python

The network is specs/keras/inception_resnet_v2.yaml (keras.applications'
InceptionResNetV2, the slim layout timm's `inception_resnet_v2` also has).
One run, batch 8, the same weights everywhere:

1. this interpreter: the generated Keras model (batch-norm statistics
   randomised), its weights saved as .weights.h5 and loaded into the
   generated torch model; the two timed alternately, outputs compared;
2. `--timm-python` (a separate venv with timm, torchvision and a torch that
   imports beside it; timm is not a dependency of irc): the generated torch
   model given the same weights (a state dict) and timm's model given them
   by position (conv by conv, batch norm by batch norm, the classifier; the
   scale Keras' batch norm lacks set to 1), timed alternately, outputs
   compared.

Prints a markdown table; benchmarks/README.md records it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BATCH = 8
ROUNDS = 5
SPEC = "keras_inception_resnet_v2"


def timed(calls: dict, rounds: int = ROUNDS) -> dict[str, float]:
    """Median seconds per call of each function, called alternately after one warm-up each."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def keras_and_torch(workdir: Path) -> dict:
    """Step 1: Keras (TensorFlow) against the generated torch model, in this interpreter."""
    import keras
    import torch

    sys.path.insert(0, str(ROOT))
    from irc_cnn.backends.torch.weights import load_keras_weights

    from generated.keras_inception_resnet_v2 import inception_resnet_v2 as keras_build
    from generated.torch.keras_inception_resnet_v2 import inception_resnet_v2 as torch_build
    from tests.test_torch_backend import randomise_batch_norm

    reference = keras_build()
    randomise_batch_norm(reference, 0)
    reference.save_weights(workdir / "irv2.weights.h5")
    model = torch_build()
    load_keras_weights(model, workdir / "irv2.weights.h5")
    model.eval()
    torch.save(model.state_dict(), workdir / "irv2.pt")
    images = np.random.default_rng(0).uniform(-1, 1, (BATCH, 299, 299, 3)).astype("float32")
    nchw = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    np.save(workdir / "images.npy", nchw.numpy())

    def run_torch():
        with torch.inference_mode():
            return model(nchw)

    seconds = timed({"keras": lambda: reference.predict_on_batch(images), "torch": run_torch})
    difference = np.abs(reference.predict_on_batch(images) - run_torch().numpy()).max()
    return {
        "seconds": seconds,
        "max_difference": float(difference),
        "versions": {"keras": keras.__version__, "torch": torch.__version__},
    }


def torch_and_timm(workdir: Path) -> dict:
    """Step 2 (run under --timm-python): the generated torch model against timm's."""
    import importlib.util

    import timm
    import torch

    path = ROOT / "generated" / "torch" / f"{SPEC}.py"
    spec = importlib.util.spec_from_file_location("irc_torch_irv2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.inception_resnet_v2()
    model.load_state_dict(torch.load(workdir / "irv2.pt", weights_only=True))
    model.eval()
    other = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=1000)
    other.eval()
    copy_by_position(model, other)
    images = torch.from_numpy(np.load(workdir / "images.npy"))

    def run(net):
        def call():
            with torch.inference_mode():
                return net(images)

        return call

    seconds = timed({"torch": run(model), "timm": run(other)})
    # timm returns logits; the generated model applies keras.applications' softmax.
    difference = (run(model)() - run(other)().softmax(dim=1)).abs().max().item()
    return {
        "seconds": seconds,
        "max_difference": difference,
        "versions": {"torch": torch.__version__, "timm": timm.__version__},
    }


def copy_by_position(source, target) -> None:
    """Conv, batch-norm and linear weights of `source` into `target`, in module order."""
    import torch
    from torch import nn

    for kind in (nn.Conv2d, nn.BatchNorm2d, nn.Linear):
        ours = [m for m in source.modules() if isinstance(m, kind)]
        theirs = [m for m in target.modules() if isinstance(m, kind)]
        assert len(ours) == len(theirs), (kind.__name__, len(ours), len(theirs))
        with torch.no_grad():
            for a, b in zip(ours, theirs):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    mine, other = getattr(a, name, None), getattr(b, name, None)
                    if other is None:
                        continue
                    if mine is None:  # Keras' batch norm without scale: a fixed 1
                        other.fill_(1.0)
                        continue
                    assert mine.shape == other.shape, (name, mine.shape, other.shape)
                    other.copy_(mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-python", help="interpreter of a venv with timm installed")
    parser.add_argument("--step", choices=("timm",), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "timm":
        print(json.dumps(torch_and_timm(Path(args.workdir))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        first = keras_and_torch(workdir)
        second = None
        if args.timm_python:
            proc = subprocess.run(
                [args.timm_python, __file__, "--step", "timm", "--workdir", tmp],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": ""},
            )
            second = json.loads(proc.stdout.strip().splitlines()[-1])
    rate = {name: BATCH / s for name, s in first["seconds"].items()}
    print(f"versions: {first['versions']}" + (f", {second['versions']}" if second else ""))
    print("| run | model | images/s | ratio |")
    print("|---|---|---|---|")
    print(f"| 1 | Keras (TensorFlow), generated | {rate['keras']:.2f} | 1.00 |")
    print(f"| 1 | torch, generated | {rate['torch']:.2f} | {rate['torch'] / rate['keras']:.2f} |")
    print(f"max |keras - torch| = {first['max_difference']:.2e}")
    if second:
        rate = {name: BATCH / s for name, s in second["seconds"].items()}
        print(f"| 2 | timm inception_resnet_v2 | {rate['timm']:.2f} | 1.00 |")
        print(
            f"| 2 | torch, generated | {rate['torch']:.2f} | {rate['torch'] / rate['timm']:.2f} |"
        )
        print(f"max |generated - timm (softmax)| = {second['max_difference']:.2e}")


if __name__ == "__main__":
    main()
