"""Data-parallel training on JAX with keras.distribution.DataParallel."""

from __future__ import annotations

import os

# Both before Keras and JAX are imported. Without an accelerator, make the host CPU
# two XLA devices, so that the example runs on two replicas as it would on two GPUs.
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import keras
from recipe import command_line, fit_on_random_images, report
from single_device import build_and_compile


def train(*, steps: int, batch_size: int, callbacks=()):
    devices = keras.distribution.list_devices()  # the GPUs, or the host's XLA devices
    # Weights replicated on every device, each batch split along its first axis.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    model = build_and_compile(steps=steps)
    global_batch = batch_size * len(devices)
    history = fit_on_random_images(model, steps=steps, batch_size=global_batch, callbacks=callbacks)
    return model, history


if __name__ == "__main__":
    report(train(**command_line()))
