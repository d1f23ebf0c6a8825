"""One worker of a data-parallel job across processes or machines, with
tf.distribute.MultiWorkerMirroredStrategy. Start one per worker, each with its TF_CONFIG
(launch_workers.py does it on one machine)."""

from __future__ import annotations

import argparse
from pathlib import Path

import tensorflow as tf
from recipe import fit_on_random_images, report
from single_device import build_and_compile


def train(*, steps: int, batch_size: int, out: Path, callbacks=()):
    # Reads TF_CONFIG: every worker's address and this one's index. Create it first.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build_and_compile(steps=steps)
    global_batch = batch_size * strategy.num_replicas_in_sync
    # Every worker reads the same data; the strategy gives each its share of a batch.
    history = fit_on_random_images(model, steps=steps, batch_size=global_batch, callbacks=callbacks)
    # Worker 0 is the chief: its copy is the checkpoint. The others save theirs beside it
    # (to compare, or delete): every worker takes part in saving.
    index = strategy.cluster_resolver.task_id
    path = out / "model.keras" if index == 0 else out / f"worker-{index}" / "model.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model, history


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4, help="images per worker per step")
    parser.add_argument("--out", type=Path, default=Path("checkpoint"))
    report(train(**vars(parser.parse_args())))
