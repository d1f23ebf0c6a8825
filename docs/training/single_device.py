"""Train a generated seed network on one device: both outputs, the aux loss discounted."""

from __future__ import annotations

import keras
from recipe import command_line, compile_seed_model, fit_on_random_images, paper_optimizer, report

from generated.inception_resnet_v2_small import create_inception_resnet_v2_small


def build_and_compile(*, steps: int, logits: bool = False, jit_compile="auto") -> keras.Model:
    """The seed model, outputs [main, aux]; `logits` leaves out the softmax."""
    model = create_inception_resnet_v2_small(
        nb_classes=10, classifier_activation=None if logits else "softmax"
    )
    optimizer = paper_optimizer(steps_per_epoch=steps)
    return compile_seed_model(model, optimizer, from_logits=logits, jit_compile=jit_compile)


def train(*, steps: int, batch_size: int, jit_compile="auto", callbacks=()):
    model = build_and_compile(steps=steps, jit_compile=jit_compile)
    history = fit_on_random_images(model, steps=steps, batch_size=batch_size, callbacks=callbacks)
    return model, history


if __name__ == "__main__":
    model, history = train(**command_line())
    report((model, history))
    model.save("inception_resnet_v2_small.keras")  # loads back with keras.models.load_model
