"""Data-parallel training on one machine's devices with tf.distribute.MirroredStrategy."""

from __future__ import annotations

import tensorflow as tf
from recipe import command_line, fit_on_random_images, report
from single_device import build_and_compile


def cpu_as_two_devices_without_gpu() -> None:
    """No GPU here: split the CPU into two logical devices, so that the strategy has two
    replicas to mirror, as it would on two GPUs. Must run before TensorFlow uses a device."""
    if not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )


def train(*, steps: int, batch_size: int, callbacks=()):
    strategy = tf.distribute.MirroredStrategy()  # every GPU, or the logical CPUs
    with strategy.scope():  # variables made here are mirrored on every replica
        model = build_and_compile(steps=steps)
    # Keras splits each global batch across the replicas; scale the batch with them.
    global_batch = batch_size * strategy.num_replicas_in_sync
    history = fit_on_random_images(model, steps=steps, batch_size=global_batch, callbacks=callbacks)
    return model, history


if __name__ == "__main__":
    cpu_as_two_devices_without_gpu()
    report(train(**command_line()))
