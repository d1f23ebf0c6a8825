"""The training-memory estimate (compiler.memory) and `irc summary --batch/--memory`.

A tiny network is counted by hand, tensor by tensor, from the rules in
docs/summary-and-plot.md; the real specs are checked for the parts' sums
and through the command line. benchmarks/training_memory.py compares the
totals with XLA's own memory analysis and (`--framework torch`) with torch's
profiler; a test here runs the latter on a small spec.
"""

from __future__ import annotations

import json

import pytest

from irc_cnn.compiler.memory import Training, kept_elements, parse_bytes, training_memory
from irc_cnn.compiler.pipeline import check_bytes, check_file
from tests.conftest import run_irc

TINY = b"""\
name: tiny
title: Tiny
input: [8, 8, 3]
classes: 10
builder: {name: create_tiny}
network:
  - conv 4 3x3
  - concat: [conv 2 1x1, conv 2 1x1]
  - maxpool 2x2 s2
  - conv 4 1x1 nobn
  - gap
head:
  - dropout 0.2
  - dense 10 softmax
"""


@pytest.fixture(scope="module")
def tiny():
    result = check_bytes(TINY, "tiny.yaml")
    assert result.ok, result.diagnostics
    return result.graph


def test_kept_tensors_counted_by_hand(tiny):
    elements, masks = kept_elements(tiny)
    # the input (the first conv's input) 8x8x3; conv1's output (its batch norm's
    # input; relu1 comes after that batch norm and keeps nothing) 8x8x4; relu1's
    # output, read by both branch convs, once: 8x8x4; the branch convs' outputs
    # 2 x 8x8x2; the branch relus' outputs (the concat the max pool keeps is
    # them) 2 x 8x8x2; the max pool's output (also conv3's input) 4x4x4;
    # conv3's output (no batch norm: relu3 keeps its input) 4x4x4; the dropout's
    # output (the dense layer's input; the global pool keeps nothing) 4; the
    # softmax's output 10; and the backward pass's two transient gradients, each
    # the size of the largest activation (8x8x4).
    assert elements == 192 + 256 + 256 + 256 + 256 + 64 + 64 + 4 + 10 + 2 * 256
    assert masks == 4  # the dropout's, one byte each


LINEAGE = b"""\
name: lineage
title: Lineage
input: [8, 8, 3]
classes: 10
builder: {name: create_lineage}
network:
  - sepconv 4 3x3
  - dwconv 3x3
  - gate: [gap keepdims, conv 4 1x1 sigmoid nobn bias]
head: [gap, dense classes softmax]
"""


def test_separable_depthwise_and_gate_counted_by_hand():
    result = check_bytes(LINEAGE, "lineage.yaml")
    assert result.ok, result.diagnostics
    elements, masks = kept_elements(result.graph)
    # the input (the separable conv's input) 8x8x3 and its depthwise output 8x8x3;
    # the separable conv's output (its batch norm's input) 8x8x4; its relu's output
    # (the depthwise conv's input) 8x8x4; the depthwise conv's output 8x8x4; its
    # relu's output, which the gate's product keeps (as its feature map) 8x8x4; the
    # gate's pooled 1x1x4 (its conv's input) and sigmoid output 1x1x4 (the product's
    # scales; a sigmoid keeps its output, not its input); the head's pooled 4 and
    # softmax 10; two transient gradients of 8x8x4.
    assert elements == 192 + 192 + 256 + 256 + 256 + 256 + 4 + 4 + 4 + 10 + 2 * 256
    assert masks == 0


def test_parts_by_dtype_and_optimizer(tiny):
    assert tiny.params == 222  # 108 + 16 + 2 x (8 + 8) + 16 + 50
    trainable = 222 - 2 * (4 + 2 + 2)  # batch norm's moving mean and variance
    per_image = 1870 * 4 + 4
    memory = training_memory(tiny, Training(batch=2, dtype="float32", optimizer="momentum"))
    assert memory.to_json() == {
        "batch": 2,
        "dtype": "float32",
        "optimizer": "momentum",
        "framework": "jax",
        "weights": 222 * 4,
        "gradients": 108 * 4,  # the largest layer's: conv1, 3x3x3x4
        "optimizer_state": trainable * 4,
        "activations": 2 * per_image,
        "total": 222 * 4 + 108 * 4 + trainable * 4 + 2 * per_image,
    }
    adam = training_memory(tiny, Training(2, "float32", "adam"))
    assert adam.optimizer_state == 2 * trainable * 4
    assert training_memory(tiny, Training(2, "float32", "sgd")).optimizer_state == 0
    half = training_memory(tiny, Training(2, "bfloat16", "momentum"))
    assert (half.weights, half.gradients, half.activations_per_image) == (
        222 * 2,
        108 * 2,
        1870 * 2 + 4,
    )
    mixed = training_memory(tiny, Training(2, "mixed", "momentum"))
    assert (mixed.weights, mixed.activations_per_image) == (222 * 4, 1870 * 2 + 4)


def test_a_normalizations_statistics_are_not_trained():
    """EfficientNet's Normalization with weights of its own: 2 x 3 + 1 values, none
    trained, so no optimizer state; the conv's 4 x 3 x 3 x 3 + 4 bias are."""
    text = TINY.replace(b"  - conv 4 3x3\n", b"  - normalization\n  - conv 4 3x3\n")
    graph = check_bytes(text, "norm.yaml").graph
    assert graph.params == 222 + 7
    memory = training_memory(graph, Training(batch=1, dtype="float32", optimizer="sgd"))
    momentum = training_memory(graph, Training(batch=1, dtype="float32", optimizer="momentum"))
    assert memory.weights == (222 + 7) * 4
    assert momentum.optimizer_state == (222 - 2 * (4 + 2 + 2)) * 4


def test_largest_batch_is_the_last_that_fits(tiny):
    memory = training_memory(tiny, Training())
    limit = memory.fixed + 5 * memory.activations_per_image + 100
    assert memory.largest_batch(limit) == 5
    assert memory.largest_batch(memory.fixed - 1) == 0


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16GiB", 16 * 2**30),
        ("24GB", 24 * 10**9),
        ("8000 MiB", 8000 * 2**20),
        ("1.5gib", 3 * 2**29),
    ],
)
def test_memory_sizes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("text", ["16 GiBs", "lots", "", "-3GB"])
def test_bad_memory_sizes(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_a_bare_unit_letter_is_ambiguous():
    """`16G` was read as 10^9 bytes without a word; GPU memory is quoted in GiB."""
    with pytest.raises(ValueError, match=r"'16G' is ambiguous: write 16GiB .* or 16GB"):
        parse_bytes("16G")
    with pytest.raises(ValueError, match=r"write 500MiB \(500 x 2\^20 bytes"):
        parse_bytes("500m")


def test_summary_json_has_training_memory_bytes():
    proc = run_irc("summary", "specs/inception_v4.yaml", "--batch", "32", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (data,) = json.loads(proc.stdout)
    memory = data["training_memory_bytes"]
    parts = ("weights", "gradients", "optimizer_state", "activations")
    assert memory["total"] == sum(memory[p] for p in parts)
    assert memory["weights"] == 4 * data["params"] == 4 * 42_744_521
    graph = check_file("specs/inception_v4.yaml").graph
    largest = max(layer.params for layer in graph.layers if layer.kind in ("conv", "dense"))
    assert memory["gradients"] == 4 * largest  # one layer's gradient at a time
    assert memory["optimizer_state"] > 4 * 42_000_000  # a momentum per trainable weight
    assert (memory["batch"], memory["dtype"], memory["optimizer"]) == (32, "float32", "momentum")
    assert memory == training_memory(graph, Training(32)).to_json()


def test_summary_text_says_the_largest_batch_that_fits():
    proc = run_irc(
        "summary",
        "specs/inception_v4.yaml",
        "--batch",
        "32",
        "--memory",
        "16GiB",
        "--dtype",
        "mixed",
    )
    assert proc.returncode == 0, proc.stderr
    memory = training_memory(check_file("specs/inception_v4.yaml").graph, Training(32, "mixed"))
    largest = memory.largest_batch(16 * 2**30)
    assert f"largest batch that fits 16.00 GiB: {largest}\n" in proc.stdout
    assert "training memory at batch 32 (mixed, momentum, jax)" in proc.stdout
    assert "counted for Keras on JAX under XLA" in proc.stdout
    for bad in (["--memory", "lots"], ["--batch", "0"], ["--optimizer", "rmsprop"]):
        assert run_irc("summary", "specs/inception_v4.yaml", *bad).returncode == 2


# -- the framework whose step is estimated --------------------------------------------


def test_torch_keeps_what_autograd_saves_counted_by_hand(tiny):
    elements, extra = kept_elements(tiny, "torch")
    # the input 8x8x3; conv1's output (bn1's input) 8x8x4; relu1's output (ReLU's backward
    # reads its result, whatever comes before) 8x8x4; the branch convs' outputs and their
    # relus' outputs, 4 x 8x8x2; the concat, a copy in torch, which the max pool keeps
    # 8x8x4; the max pool's output (conv3's input) 4x4x4; relu3's output 4x4x4 (conv3's
    # own output is not kept: relu3 reads its result); the dropout's noise and output 2 x 4;
    # the softmax's output 10; no transient gradients (torch's peak comes as the backward
    # pass starts, at the head).
    assert elements == 192 + 256 + 256 + 4 * 128 + 256 + 64 + 64 + 2 * 4 + 10
    assert extra == 8 * 64  # the max pool's int64 indices, one per output element
    assert kept_elements(tiny) != kept_elements(tiny, "torch")


def test_torch_counts_every_gradient(tiny):
    trainable = 222 - 2 * (4 + 2 + 2)
    jax = training_memory(tiny, Training(2, "float32", "momentum", "jax"))
    torch = training_memory(tiny, Training(2, "float32", "momentum", "torch"))
    assert (jax.gradients, torch.gradients) == (108 * 4, trainable * 4)  # conv1's; all of them
    assert torch.weights == jax.weights and torch.optimizer_state == jax.optimizer_state
    assert torch.activations_per_image == 1618 * 4 + 8 * 64
    assert torch.to_json()["framework"] == "torch"


def test_torch_estimate_is_what_autograd_saves(tiny):
    """The torch rules against torch itself: every tensor the generated module's forward
    pass saves for backward, per image (first dimension the batch), byte for byte."""
    torch = pytest.importorskip("torch")
    from irc_cnn.backends.build import generated_builder

    result = check_bytes(TINY, "tiny.yaml")
    model = generated_builder(result, "torch", ())().train()
    batch, saved = 3, {}

    def pack(tensor):
        if tensor.shape[:1] == (batch,):  # not a weight or a channel's statistics
            saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(torch.randn(batch, 3, 8, 8))
    memory = training_memory(result.graph, Training(batch, "float32", framework="torch"))
    assert sum(saved.values()) == batch * memory.activations_per_image


def test_summary_names_the_framework_and_refuses_an_unknown_one():
    words = ("summary", "specs/inception_v4.yaml", "--batch", "8")
    proc = run_irc(*words, "--framework", "torch", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (data,) = json.loads(proc.stdout)
    memory = data["training_memory_bytes"]
    assert memory["framework"] == "torch"
    graph = check_file("specs/inception_v4.yaml").graph
    assert memory == training_memory(graph, Training(8, framework="torch")).to_json()
    assert memory["gradients"] == memory["optimizer_state"]  # every trainable weight's
    (jax,) = json.loads(run_irc(*words, "--format", "json").stdout)
    assert jax["training_memory_bytes"]["framework"] == "jax"  # the default
    assert jax["training_memory_bytes"]["gradients"] < memory["gradients"] / 20  # one layer's
    text = run_irc(*words, "--framework", "torch").stdout
    assert "training memory at batch 8 (float32, momentum, torch)" in text
    assert "counted for PyTorch, which keeps every weight's .grad" in text
    bad = run_irc(*words, "--framework", "tensorflow")
    assert bad.returncode == 2
    assert "--framework: invalid choice: 'tensorflow' (choose from 'jax', 'torch')" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.training
def test_torch_estimate_is_within_the_band_of_a_profiled_step():
    """One real training step of irv2_small's torch module at batch 8 on the CPU, under
    torch's profiler (benchmarks/torch_step_memory.py): the estimate is within 0.75-1.25."""
    pytest.importorskip("torch")
    from benchmarks.training_memory import FRAMEWORKS, HIGH, LOW, estimate, measure_in_child

    spec = "specs/variants/irv2_small.yaml"
    figures = measure_in_child(FRAMEWORKS["torch"], spec, 8)
    counted = estimate(spec, 8, "torch")
    assert figures["gradient_bytes"] == counted["gradients"]  # every .grad, as counted
    assert LOW <= counted["total"] / FRAMEWORKS["torch"].measured(figures) <= HIGH


# -- several specs: one table -----------------------------------------------------------


def test_summary_of_two_specs_is_one_table_with_percentages():
    specs = ("specs/irv2.yaml", "specs/variants/irv2_small.yaml")
    proc = run_irc("summary", *specs)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("spec ") for line in lines) == 1  # one header
    assert "stage" not in proc.stdout  # no per-stage tables
    small = next(line for line in lines if line.startswith(specs[1]))
    change = 33_547_426 / 58_841_682 - 1
    assert f"33,547,426  {100 * change:+.1f}%" in small
    assert "149x149x3" in small and "107x107" in small and "3.49 G" in small
    proc = run_irc("summary", *specs, "--format", "json", "--batch", "8")
    first, second = json.loads(proc.stdout)
    assert "change_against_first" not in first
    assert second["change_against_first"]["params"] == round(change, 6)
    assert second["flops"] == 2 * second["macs"]
    assert second["change_against_first"]["training_total"] == round(
        second["training_memory_bytes"]["total"] / first["training_memory_bytes"]["total"] - 1, 6
    )
    proc = run_irc("summary", *specs, "--format", "markdown")
    assert f"| `{specs[1]}` | 149x149x3 | 33,547,426 | {100 * change:+.1f}% |" in proc.stdout
    assert run_irc("summary", *specs, "--expand").returncode == 2
