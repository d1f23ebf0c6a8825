"""One worker of a data-parallel job across processes or machines, with
tf.distribute.MultiWorkerMirroredStrategy. Start one per worker, each with its TF_CONFIG
(launch_workers.py does it on one machine).

`model.fit` does not run under this strategy with two or more workers in Keras 3 (its
first batch goes through `strategy.reduce`, which fails: keras-team/keras#20585), so
this worker runs the training step itself, as `fit` would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import tensorflow as tf
from recipe import AUX_LOSS_WEIGHT, random_images
from single_device import build_and_compile


def train(*, steps: int, batch_size: int, out: Path, callbacks=()):
    # Reads TF_CONFIG: every worker's address and this one's index. Create it first.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build_and_compile(steps=steps)
        model.optimizer.build(model.trainable_variables)  # its variables mirrored too
    global_batch = batch_size * strategy.num_replicas_in_sync

    @tf.function
    def train_step(images, labels):
        def on_each_replica(images, labels):
            with tf.GradientTape() as tape:
                main, aux = model(images, training=True)
                per_image = keras.losses.sparse_categorical_crossentropy(labels, main)
                per_image += AUX_LOSS_WEIGHT * keras.losses.sparse_categorical_crossentropy(
                    labels, aux
                )
                loss = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
            gradients = tape.gradient(loss, model.trainable_variables)
            # Keras' optimizer sums the gradients of all replicas before it applies them.
            model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        losses = strategy.run(on_each_replica, args=(images, labels))
        return strategy.reduce("SUM", losses, axis=None)  # the mean over the global batch

    # Every worker reads the same data, batched globally; the strategy gives each worker
    # its share of every batch.
    dataset = tf.data.Dataset.from_tensor_slices(random_images(model, steps * global_batch))
    for step, (images, labels) in enumerate(
        strategy.experimental_distribute_dataset(dataset.batch(global_batch))
    ):
        loss = float(train_step(images, labels))
        for callback in callbacks:
            callback(step, loss)
    # Worker 0 is the chief: its copy is the checkpoint. The others save theirs beside it
    # (to compare, or delete): every worker takes part in saving.
    index = strategy.cluster_resolver.task_id
    path = out / "model.keras" if index == 0 else out / f"worker-{index}" / "model.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4, help="images per worker per step")
    parser.add_argument("--out", type=Path, default=Path("checkpoint"))
    args = parser.parse_args()
    log = lambda step, loss: print(f"step {step + 1}: loss {loss:.4f}")
    train(steps=args.steps, batch_size=args.batch_size, out=args.out, callbacks=[log])
