"""Mixed precision: compute in 16 bits, keep the weights (and the loss) in float32."""

from __future__ import annotations

import keras
from recipe import command_line, fit_on_random_images, report
from single_device import build_and_compile


def train(*, steps: int, batch_size: int, policy: str = "mixed_bfloat16", callbacks=()):
    # "mixed_float16" on NVIDIA GPUs (Keras then scales the loss by itself), "mixed_bfloat16"
    # on CPUs and TPUs. Set it before the model is built.
    keras.mixed_precision.set_global_policy(policy)
    # Logits out: the loss applies the softmax itself, in float32.
    model = build_and_compile(steps=steps, logits=True)
    history = fit_on_random_images(model, steps=steps, batch_size=batch_size, callbacks=callbacks)
    return model, history


if __name__ == "__main__":
    report(train(**command_line()))
