"""Torch's own accounting of one training step of a generated torch module, on the CPU.

benchmarks/training_memory.py runs `measure` in a fresh interpreter per spec and
batch (`--framework torch`); tests/test_memory.py runs it on a small spec.

The step: the module `irc compile --backend torch` writes (`irc_cnn.build`),
float32, in training mode; a random batch and random one-hot-like labels;
categorical cross-entropy on each output's probabilities (the builders end in
softmax, as the Keras models the XLA benchmark trains), summed over the
outputs (auxiliary heads included); `backward()`; `torch.optim.SGD(lr=0.01,
momentum=0.9).step()`. One step runs first, unprofiled, so that the momentum
buffers exist, as they do at every step but the first; `zero_grad()` (which
sets each `.grad` to None, torch's default) then frees its gradients.

The measured step (batch and labels created inside it) runs under
`torch.profiler.profile(activities=[CPU], profile_memory=True)`. Each
allocation and free the CPU allocator makes while profiling is on is an
allocation event of the profiler's event tree, with its size (negative for a
free) and `total_allocated`: the bytes the allocator has handed out since
profiling began and not got back (a free of a tensor made before profiling
counts 0). Its maximum is the peak of live allocations during the step; the
running sum of the sizes gives the same number, and the benchmark checks that
it does. The measure is that peak plus the bytes that existed before the step
and stay through it: every parameter, buffer (batch-norm statistics) and
momentum buffer, each storage once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

MOMENTUM, LEARNING_RATE = 0.9, 0.01


def storage_bytes(tensors: Iterable[Any]) -> int:
    """Bytes of the distinct storages under `tensors` (a tied weight counts once)."""
    sizes = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(sizes.values())


def allocations(nodes: Iterable[Any]) -> Iterator[tuple[int, int, int]]:
    """(time, signed size, total allocated) of every allocation event under `nodes`."""
    from torch._C._profiler import _ExtraFields_Allocation

    for node in nodes:
        if isinstance(node.extra_fields, _ExtraFields_Allocation):
            fields = node.extra_fields
            yield node.start_time_ns, fields.alloc_size, fields.total_allocated
        yield from allocations(node.children)


def measure(entry: str, batch: int) -> dict:
    """The bytes one training step of `entry` (`SPEC` or `SPEC@PRESET`) needs at `batch`."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from benchmarks.training_memory import split
    from irc_cnn.backends.build import generated_builder
    from irc_cnn.compiler.pipeline import check_file

    result = check_file(*split(entry))
    if not result.ok:
        raise SystemExit(f"{entry} has errors; run irc check {entry}")
    torch.manual_seed(0)
    model = generated_builder(result, "torch", ())().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    height, width, channels = result.graph.input

    def step() -> None:
        x = torch.randn(batch, channels, height, width)
        labels = [torch.softmax(torch.randn(batch, *shape), -1) for shape in result.graph.outputs]
        with record_function("forward"):
            outputs = model(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            loss = sum(
                -(y * p.clamp_min(1e-7).log()).sum(-1).mean() for y, p in zip(labels, outputs)
            )
        with record_function("backward"):
            loss.backward()
        optimizer.step()

    step()
    optimizer.zero_grad()
    momenta = [v for state in optimizer.state.values() for v in state.values()]
    before = storage_bytes([*model.parameters(), *model.buffers(), *momenta])
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    seconds = time.perf_counter() - start
    tree = prof.profiler.kineto_results.experimental_event_tree()
    events = sorted(allocations(tree))
    backward = min(n.start_time_ns for n in tree if n.name == "backward")
    live, peak, at_backward = 0, 0, 0
    for when, size, _ in events:
        live += size
        peak = max(peak, live)
        at_backward = live if when < backward else at_backward
    if peak != max(total for *_, total in events):
        raise SystemExit(f"{entry}: the running sum of allocations disagrees with the allocator's")
    return {
        "spec": entry,
        "batch": batch,
        "before_bytes": before,
        "peak_bytes": peak,
        "live_at_backward_bytes": at_backward,
        "gradient_bytes": storage_bytes(p.grad for p in model.parameters() if p.grad is not None),
        "step_s": round(seconds, 1),
    }
