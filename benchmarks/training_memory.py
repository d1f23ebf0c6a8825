"""irc's training-memory estimate beside XLA's own memory analysis of a real training step.

Run from the repository root: `python benchmarks/training_memory.py [SPEC...]`
(default: every spec under specs/, and each `scales:` preset of one as
`SPEC@PRESET`, as `irc compile` builds them; needs the `bench` extra: jax).

For each spec and batch size (8 and 32, float32), a fresh interpreter with
KERAS_BACKEND=jax on the CPU generates the spec's Keras module (as
`irc compile` would, into a temporary folder), builds the model and compiles
one stateless training step: `model.stateless_call` in training mode,
categorical cross-entropy summed over the outputs (the auxiliary heads
included), `jax.grad`, and SGD with momentum (`m = 0.9 m + g; w = w - 0.01 m`).
`jax.jit(step).lower(...).compile().memory_analysis()` gives what XLA itself
plans for that step; the measurement is its temporary bytes plus its
argument bytes (weights, batch-norm statistics, momenta, the batch and its
labels). Nothing is executed, so no real memory is needed.

The estimate is `irc_cnn.compiler.memory.training_memory` with the SGD with
momentum optimizer, float32. Results are printed as a Markdown table for
benchmarks/README.md. Each XLA figure is added to
benchmarks/training_memory.json as soon as it is measured (a whole run
compiles 2 x the number of specs training steps, minutes each on 2 cores);
`--reuse` takes the figures that file already has and measures only the
rest, so an interrupted run resumes.

XLA is asked for less LLVM optimisation of the generated machine code
(`--xla_backend_optimization_level=0`): that runs after buffer assignment,
so the memory figures are the same (checked on inception_v4_half at batch
8: identical bytes) and the compile is faster.

`--framework torch` measures the generated torch module instead: one real
step on the CPU under torch's profiler (benchmarks/torch_step_memory.py says
how), beside `training_memory(..., framework="torch")`; its figures go to
benchmarks/training_memory_torch.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
BATCHES = (8, 32)
LOW, HIGH = 0.75, 1.25  # the band the estimate must stay in


def measure(spec: str, batch: int) -> dict:
    """XLA's temp and argument bytes for one training step (runs in a child with JAX)."""
    import jax

    import keras

    from irc_cnn.backends.keras import emit
    from irc_cnn.compiler.pipeline import check_file

    result = check_file(*split(spec))
    if not result.ok:
        raise SystemExit(f"{spec} has errors; run irc check {spec}")
    with tempfile.TemporaryDirectory() as folder:
        for name, text in emit.render(result).items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        path = Path(folder) / f"{result.spec.name}.py"
        module_spec = importlib.util.spec_from_file_location(result.spec.name, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        model = getattr(module, result.spec.builder.name)()
    outputs = result.graph.outputs

    def loss_fn(trainable, non_trainable, x, ys):
        preds, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        loss = sum(
            keras.ops.mean(keras.losses.categorical_crossentropy(y, p)) for y, p in zip(ys, preds)
        )
        return loss, non_trainable

    def step(trainable, non_trainable, momenta, x, ys):
        grad = jax.grad(loss_fn, has_aux=True)
        grads, non_trainable = grad(trainable, non_trainable, x, ys)
        momenta = [0.9 * m + g for m, g in zip(momenta, grads)]
        trainable = [w - 0.01 * m for w, m in zip(trainable, momenta)]
        return trainable, non_trainable, momenta

    def like(variables):
        return [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in variables]

    trainable = like(model.trainable_variables)
    args = (
        trainable,
        like(model.non_trainable_variables),
        trainable,
        jax.ShapeDtypeStruct((batch, *result.graph.input), "float32"),
        [jax.ShapeDtypeStruct((batch, *shape), "float32") for shape in outputs],
    )
    start = time.perf_counter()
    stats = jax.jit(step).lower(*args).compile().memory_analysis()
    return {
        "spec": spec,
        "batch": batch,
        "temp_bytes": int(stats.temp_size_in_bytes),
        "argument_bytes": int(stats.argument_size_in_bytes),
        "output_bytes": int(stats.output_size_in_bytes),
        "compile_s": round(time.perf_counter() - start, 1),
    }


@dataclass(frozen=True)
class Framework:
    """How one framework's step is measured: the module whose `measure` runs in the
    child, the child's environment, where the figures are kept, and what of them
    is the measure."""

    module: str
    env: dict[str, str]
    results: Path
    measured: Callable[[dict], int]
    heading: str


FRAMEWORKS = {
    "jax": Framework(
        "benchmarks.training_memory",
        {
            "KERAS_BACKEND": "jax",
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": "--xla_backend_optimization_level=0",
        },
        HERE / "training_memory.json",
        lambda r: r["temp_bytes"] + r["argument_bytes"],
        "XLA temp + arguments",
    ),
    "torch": Framework(
        "benchmarks.torch_step_memory",
        {},
        HERE / "training_memory_torch.json",
        lambda r: r["before_bytes"] + r["peak_bytes"],
        "torch peak + weights and momenta",
    ),
}


def measure_in_child(framework: Framework, spec: str, batch: int) -> dict:
    env = {**os.environ, **framework.env}
    code = (
        f"import json, sys; from {framework.module} import measure; "
        f"print(json.dumps(measure({spec!r}, {batch})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring {spec} at batch {batch} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def estimate(spec: str, batch: int, framework: str) -> dict:
    from irc_cnn.compiler.memory import Training, training_memory
    from irc_cnn.compiler.pipeline import check_file

    result = check_file(*split(spec))
    setup = Training(batch=batch, dtype="float32", optimizer="momentum", framework=framework)
    return training_memory(result.graph, setup).to_json()


def split(entry: str) -> tuple[str, bool, None, tuple, None, str | None]:
    """check_file's arguments for `SPEC` or `SPEC@PRESET` (a scale preset)."""
    path, _, preset = entry.partition("@")
    return path, False, None, (), None, preset or None


def all_specs() -> list[str]:
    """Every spec under specs/, and each scale preset of a spec that has a table."""
    from irc_cnn.compiler.pipeline import check_file

    out = []
    for path in sorted((ROOT / "specs").rglob("*.yaml")):
        name = path.relative_to(ROOT).as_posix()
        out += [name, *(f"{name}@{preset}" for preset in check_file(name).spec.scales)]
    return out


def mib(count: int) -> str:
    return f"{count / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", help="default: every spec under specs/")
    parser.add_argument("--framework", choices=tuple(FRAMEWORKS), default="jax")
    parser.add_argument("--reuse", action="store_true", help="figures from the JSON file")
    args = parser.parse_args()
    framework = FRAMEWORKS[args.framework]
    specs = args.specs or all_specs()
    results = framework.results
    rows = json.loads(results.read_text()) if results.exists() else []
    recorded = {(r["spec"], r["batch"]): r for r in rows}
    (other,) = set(FRAMEWORKS) - {args.framework}  # whose estimate would be misread here
    outside = []
    print(
        f"| spec | batch | {framework.heading} (MiB) | estimate (MiB) | estimate / measured "
        f"| {other}'s estimate / measured |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for spec in specs:
        for batch in BATCHES:
            figures = recorded.get((spec, batch)) if args.reuse else None
            if figures is None:
                figures = recorded[spec, batch] = measure_in_child(framework, spec, batch)
                rows = sorted(recorded.values(), key=lambda r: (r["spec"], r["batch"]))
                results.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
            measured = framework.measured(figures)
            total = estimate(spec, batch, args.framework)["total"]
            ratio = total / measured
            if not LOW <= ratio <= HIGH:
                outside.append(f"{spec} at {batch}")
            misread = estimate(spec, batch, other)["total"] / measured
            print(
                f"| `{spec}` | {batch} | {mib(measured)} | {mib(total)} | {ratio:.2f} "
                f"| {misread:.2f} |",
                flush=True,
            )
    print(f"\noutside {LOW}-{HIGH}: {', '.join(outside) or 'none'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
