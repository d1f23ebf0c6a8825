"""What the training examples share: the seed networks' two losses, the paper's optimizer,
stand-in data, a command line. Keras only, so it serves every backend."""

from __future__ import annotations

import argparse

import keras
import numpy as np

# The aux head's loss is added to the main loss, discounted. GoogLeNet (arXiv:1409.4842,
# section 5) weighted its two aux losses by 0.3; the Inception-v3 paper (arXiv:1512.00567,
# section 4) and the Inception-v4 paper (arXiv:1602.07261) give no weight. 0.4 is the weight
# of TF-slim's train_image_classifier.py, the script published with the Inception-v3, v4
# and Inception-ResNet-v2 models.
AUX_LOSS_WEIGHT = 0.4


def paper_optimizer(steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Inception-v4 paper, section 5: RMSProp with decay 0.9 and epsilon 1.0, learning rate
    0.045 decayed by 0.94 every two epochs."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.045, decay_steps=2 * steps_per_epoch, decay_rate=0.94, staircase=True
    )
    return keras.optimizers.RMSprop(learning_rate=schedule, rho=0.9, epsilon=1.0)


def compile_seed_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    *,
    from_logits: bool = False,
    jit_compile: bool | str = "auto",
) -> keras.Model:
    """Compile a model whose outputs are [main, aux]: one loss each, the aux one discounted."""
    main, aux = model.output_names
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    model.compile(
        optimizer=optimizer,
        loss={main: loss, aux: loss},
        loss_weights={main: 1.0, aux: AUX_LOSS_WEIGHT},
        metrics={main: ["accuracy"]},
        jit_compile=jit_compile,
    )
    return model


def random_images(model: keras.Model, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Stand-ins for a data set: `count` uniform images of the model's input shape and
    labels of its classes, the same on every process (one seed). Replace them with yours."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(count, *model.input_shape[1:])).astype("float32")
    return images, rng.integers(0, model.outputs[0].shape[-1], size=count)


def fit_on_random_images(model: keras.Model, *, steps: int, batch_size: int, callbacks=()):
    """`steps` batches of random images, one epoch. Your data can be arrays like these, a
    tf.data.Dataset or a PyTorch DataLoader."""
    images, labels = random_images(model, steps * batch_size)
    # One target per output: the same labels for the seed models' main and aux heads.
    targets = labels if len(model.outputs) == 1 else dict.fromkeys(model.output_names, labels)
    return model.fit(images, targets, batch_size=batch_size, epochs=1, callbacks=list(callbacks))


def report(trained: tuple[keras.Model, keras.callbacks.History]) -> None:
    """Print the last value of every loss and metric."""
    _, history = trained
    print({name: round(values[-1], 4) for name, values in history.history.items()})


def command_line() -> dict[str, int]:
    """--steps and --batch-size, as train()'s keyword arguments."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20, help="training steps (batches)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per replica per step")
    return vars(parser.parse_args())
