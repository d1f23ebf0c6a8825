"""Train a generated network's features under a head of your own (include_top=False)."""

from __future__ import annotations

import keras
from recipe import command_line, fit_on_random_images, paper_optimizer, report

from generated.inception_resnet_v2_small import create_inception_resnet_v2_small


def build(classes: int = 5, input_shape: tuple[int, int, int] = (149, 149, 3)) -> keras.Model:
    """The network without its two classifiers, pooled to a vector, then your layers."""
    features = create_inception_resnet_v2_small(
        include_top=False, pooling="avg", input_shape=input_shape
    )
    x = keras.layers.Dropout(0.2, name="my_dropout")(features.output)
    outputs = keras.layers.Dense(classes, activation="softmax", name="my_classes")(x)
    return keras.Model(features.input, outputs, name="irv2_small_my_head")


def train(*, steps: int, batch_size: int, callbacks=()):
    model = build()  # one output: without the top there is no aux head
    model.compile(
        optimizer=paper_optimizer(steps_per_epoch=steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = fit_on_random_images(model, steps=steps, batch_size=batch_size, callbacks=callbacks)
    return model, history


if __name__ == "__main__":
    report(train(**command_line()))
