"""Train a generated Inception-ResNet-v2 variant on scikit-learn's handwritten digits.

    pip install -e '.[examples]'
    python examples/train_digits.py

The data: `sklearn.datasets.load_digits`, 1,797 grey 8x8 images of the digits 0-9 that
ship inside scikit-learn (nothing is downloaded); 360 are held out for the accuracy. The
model: examples/irv2_digits.yaml, compiled by irc into examples/inception_resnet_v2_digits.py.
Prints a progress bar, then the held-out loss and accuracy; writes the loss of every step
to a plot, train_digits_loss.png beside this script unless --plot says where.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import matplotlib
import numpy as np
from inception_resnet_v2_digits import create_inception_resnet_v2_digits
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

matplotlib.use("Agg")  # files only, no window
from matplotlib import pyplot

HERE = Path(__file__).resolve().parent


def digits(seed: int) -> list[np.ndarray]:
    """Train and test images (8x8x1, scaled to 0-1 from scikit-learn's 0-16) and labels."""
    data = load_digits()
    images = (data.images / 16.0).astype("float32")[..., np.newaxis]
    return train_test_split(
        images, data.target, test_size=360, stratify=data.target, random_state=seed
    )


def train(steps: int, batch_size: int, seed: int) -> tuple[keras.Model, list[float], dict]:
    """`steps` steps on random batches of the training images; the held-out loss and accuracy."""
    keras.utils.set_random_seed(seed)
    x_train, x_test, y_train, y_test = digits(seed)
    model = create_inception_resnet_v2_digits()  # 10 classes, softmax
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    progress = keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"])
    losses = []
    for step in range(steps):
        batch = rng.choice(len(x_train), size=batch_size, replace=False)
        loss, accuracy = model.train_on_batch(x_train[batch], y_train[batch])
        losses.append(float(loss))
        progress.update(step + 1, [("loss", loss), ("accuracy", accuracy)])
    held_out = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    return model, losses, held_out


def plot(losses: list[float], held_out: dict, path: Path) -> None:
    """Every step's loss, its moving average over 20 steps, the held-out result in the title."""
    figure, axes = pyplot.subplots(figsize=(7, 4))
    axes.plot(range(1, len(losses) + 1), losses, lw=0.8, alpha=0.5, label="batch loss")
    window = min(20, len(losses))
    average = np.convolve(losses, np.ones(window) / window, mode="valid")
    axes.plot(range(window, len(losses) + 1), average, lw=2, label=f"mean of {window} steps")
    axes.set(xlabel="step", ylabel="cross-entropy", yscale="log")
    axes.set_title(
        f"{len(losses)} steps: held-out loss {held_out['loss']:.3f}, "
        f"accuracy {held_out['accuracy']:.1%}"
    )
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=HERE / "train_digits_loss.png")
    args = parser.parse_args()
    _, losses, held_out = train(args.steps, args.batch_size, args.seed)
    plot(losses, held_out, args.plot)
    print(
        f"last step's loss {losses[-1]:.4f}; held out: loss {held_out['loss']:.4f}, "
        f"accuracy {held_out['accuracy']:.4f}; plot: {args.plot}"
    )


if __name__ == "__main__":
    main()
