"""Fine-tune a variant from its base's weights, against the same variant from scratch.

    pip install -e '.[examples]'
    python examples/finetune_variant.py

scikit-learn's 8x8 digits (nothing is downloaded) are split by class: the base
network (examples/digits_base.yaml, 4 residual blocks) learns the digits 0-4;
a variant of it (examples/digits_variant.yaml: 2 blocks, another head) learns the
digits 5-9, once starting from the base's weights (`irc transfer`'s Python side:
every layer the two share by name) and once from a random start, with the same
steps, batches and seed. Prints the transfer report and both held-out results;
plots both loss curves to finetune_variant.png beside this script (--plot).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import matplotlib
import numpy as np
from irc_cnn.backends.keras.transfer import build, transfer
from irc_cnn.compiler.pipeline import check_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

matplotlib.use("Agg")  # files only, no window
from matplotlib import pyplot

HERE = Path(__file__).resolve().parent


def task(digits: range, seed: int) -> list[np.ndarray]:
    """Train and test images (8x8x1, 0-1) of `digits`, labelled 0.. in their order."""
    data = load_digits()
    keep = np.isin(data.target, list(digits))
    images = (data.images[keep] / 16.0).astype("float32")[..., np.newaxis]
    labels = data.target[keep] - digits.start
    return train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=seed)


def train(model: keras.Model, data: list[np.ndarray], steps: int, batch: int, seed: int):
    """`steps` Adam steps on random batches; every step's loss and the held-out result."""
    x_train, x_test, y_train, y_test = data
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        picked = rng.choice(len(x_train), size=batch, replace=False)
        loss, _ = model.train_on_batch(x_train[picked], y_train[picked])
        losses.append(float(loss))
    return losses, model.evaluate(x_test, y_test, verbose=0, return_dict=True)


def plot(curves: dict[str, tuple[list[float], dict]], path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(7, 4))
    for label, (losses, held_out) in curves.items():
        window = min(10, len(losses))
        average = np.convolve(losses, np.ones(window) / window, mode="valid")
        text = f"{label}: held out {held_out['accuracy']:.1%}"
        axes.plot(range(window, len(losses) + 1), average, lw=2, label=text)
    axes.set(xlabel="step", ylabel=f"cross-entropy (mean of {window} steps)", yscale="log")
    axes.set_title("The variant on the digits 5-9, from the base's weights or from scratch")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=HERE / "finetune_variant.png")
    args = parser.parse_args()
    steps, batch, seed = args.steps, args.batch_size, args.seed
    base_spec = check_file(HERE / "digits_base.yaml")
    variant_spec = check_file(HERE / "digits_variant.yaml")

    keras.utils.set_random_seed(seed)
    base = build(base_spec)
    _, base_held_out = train(base, task(range(5), seed), steps, batch, seed)
    print(f"base on 0-4: held out accuracy {base_held_out['accuracy']:.4f}")

    curves = {}
    for start in ("transferred", "random"):
        keras.utils.set_random_seed(seed + 1)  # the same initial weights for both starts
        variant = build(variant_spec)
        if start == "transferred":
            print(transfer(variant, base).to_text(), end="")
        curves[start] = train(variant, task(range(5, 10), seed), steps, batch, seed + 1)
    plot(curves, args.plot)
    print(
        f"variant on 5-9 after {steps} steps: transferred: held out accuracy "
        f"{curves['transferred'][1]['accuracy']:.4f}; random start: held out accuracy "
        f"{curves['random'][1]['accuracy']:.4f}; plot: {args.plot}"
    )


if __name__ == "__main__":
    main()
