"""One training example of docs/training/, run in this fresh process, and what the tests
check written into --out as JSON (and NumPy files): every step's losses, whether the replicas
hold the same weights, outputs on a fixed probe batch.

tests/test_training.py runs it as `python tests/training_worker.py CASE --out DIR`, one
process per case: devices (logical CPUs, XLA host devices) and the Keras backend are fixed
when a framework starts, so no case can share a process with another, or with pytest. The
one-device examples fix neither and are one case, run one after another.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "docs" / "training"), str(ROOT)]

STEPS = 3
BATCH = 2  # per replica


def loss_recorder():
    """A callback that keeps every step's losses (Keras reports the epoch's running mean)."""
    import keras

    class LossRecorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[dict[str, float]] = []

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append({k: float(v) for k, v in logs.items() if k.endswith("loss")})

    return LossRecorder()


def probe_batch(model) -> np.ndarray:  # noqa: F821
    import numpy as np

    shape = (2, *model.input_shape[1:])
    return np.random.default_rng(99).uniform(size=shape).astype("float32")


def replica_report(variables, copies_of) -> list[dict]:
    """For each variable: how many copies it has and the largest difference between them."""
    import numpy as np

    report = []
    for v in variables:
        copies = [np.asarray(c) for c in copies_of(v)]
        spread = max(float(np.max(np.abs(c - copies[0]))) for c in copies)
        report.append(
            {"path": v.path, "trainable": v.trainable, "copies": len(copies), "spread": spread}
        )
    return report


def one_device(module_name: str) -> dict:
    """An example that trains on one device: its losses, outputs, dtypes and size."""
    module = importlib.import_module(module_name)
    recorder = loss_recorder()
    model, _ = module.train(steps=STEPS, batch_size=BATCH, callbacks=[recorder])
    outputs = list(model.output_names)
    return {
        "losses": recorder.steps,
        "outputs": outputs,
        "variable_dtypes": sorted({v.dtype for v in model.weights}),
        # the classifiers compute in float32 under mixed precision, every other layer in its policy
        "compute_dtypes": sorted(
            {layer.compute_dtype for layer in model.layers[1:] if layer.name not in outputs}
        ),
        "output_dtypes": sorted({model.get_layer(name).compute_dtype for name in outputs}),
        "params": model.count_params(),
    }


def case_one_device(out: Path) -> dict:
    """single_device.py, own_head.py and mixed_precision.py in this one process, each on a
    clean Keras state: starting TensorFlow once, not three times, saves 4-5 s of CPU each.
    Mixed precision comes last: it sets Keras' global policy."""
    import keras

    results = {}
    for name in ("single_device", "own_head", "mixed_precision"):
        keras.backend.clear_session()
        results[name] = one_device(name)
    return results


def case_mirrored(out: Path) -> dict:
    import mirrored

    mirrored.cpu_as_two_devices_without_gpu()
    recorder = loss_recorder()
    model, _ = mirrored.train(steps=STEPS, batch_size=BATCH, callbacks=[recorder])
    return {
        "losses": recorder.steps,
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "devices": list(model.distribute_strategy.extended.worker_devices),
        "variables": replica_report(
            model.weights, lambda v: model.distribute_strategy.experimental_local_results(v.value)
        ),
    }


def case_multi_worker(out: Path) -> dict:
    """A worker: trains, saves (multi_worker.train), then keeps its outputs on the probe."""
    import multi_worker
    import numpy as np

    losses = []
    record = lambda step, loss: losses.append({"loss": loss})
    model = multi_worker.train(steps=STEPS, batch_size=BATCH, out=out, callbacks=[record])
    index = model.distribute_strategy.cluster_resolver.task_id
    outputs = model(probe_batch(model), training=False)
    np.savez(out / f"probe-{index}.npz", *[np.asarray(o) for o in outputs])
    return {
        "index": index,
        "losses": losses,
        "replicas": model.distribute_strategy.num_replicas_in_sync,
    }


def case_load_checkpoint(out: Path) -> dict:
    """One process, no strategy: load the chief's checkpoint and the other worker's copy."""
    import keras
    import numpy as np

    chief = keras.models.load_model(out / "model.keras", safe_mode=True)
    other = keras.models.load_model(out / "worker-1" / "model.keras", safe_mode=True)
    spread = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(chief.trainable_weights, other.trainable_weights, strict=True)
    )
    trained = np.load(out / "probe-0.npz")
    loaded = chief(probe_batch(chief), training=False)
    return {
        "weights": len(chief.weights),
        "worker_spread_trainable": spread,
        "output_spread": [
            float(np.max(np.abs(np.asarray(b) - trained[f"arr_{i}"]))) for i, b in enumerate(loaded)
        ],
    }


def case_jax_data_parallel(out: Path) -> dict:
    import jax_data_parallel  # sets KERAS_BACKEND and XLA_FLAGS before Keras starts
    import keras

    recorder = loss_recorder()
    model, _ = jax_data_parallel.train(steps=STEPS, batch_size=BATCH, callbacks=[recorder])
    return {
        "backend": keras.backend.backend(),
        "devices": keras.distribution.list_devices(),
        "losses": recorder.steps,
        "variables": replica_report(
            model.weights, lambda v: [shard.data for shard in v.value.addressable_shards]
        ),
    }


def case_torch(out: Path) -> dict:
    """A process of torch_ddp.py's job (started by torchrun): trains, then digests of every
    parameter's gradient (after DDP's all-reduce) and value, and of each buffer."""
    import os
    from datetime import timedelta

    import torch.distributed as dist
    import torch_ddp

    dist.init_process_group("gloo", timeout=timedelta(seconds=int(os.environ["IRC_TIMEOUT"])))
    losses = []
    model = torch_ddp.train(
        steps=STEPS, batch_size=BATCH, callbacks=[lambda step, loss: losses.append(loss)]
    )
    digest = lambda t: [float(t.double().sum()), float(t.double().norm())]
    module = model.module
    result = {
        "index": dist.get_rank(),
        "world": dist.get_world_size(),
        "losses": [{"loss": loss} for loss in losses],
        "gradients": {n: digest(p.grad) for n, p in module.named_parameters()},
        "weights": {n: digest(p.detach()) for n, p in module.named_parameters()},
        "buffers": {n: digest(b) for n, b in module.named_buffers()},
    }
    dist.destroy_process_group()
    return result


CASES = {
    "one-device": case_one_device,
    "mirrored": case_mirrored,
    "multi-worker": case_multi_worker,
    "load-checkpoint": case_load_checkpoint,
    "jax": case_jax_data_parallel,
    "torch": case_torch,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = CASES[args.case](args.out)
    name = f"{args.case}-{result['index']}" if "index" in result else args.case
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
