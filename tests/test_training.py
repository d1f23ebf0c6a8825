"""Training what irc generates: docs/training.md's examples, on one device, on two replicas
(tf.distribute.MirroredStrategy, keras.distribution.DataParallel on JAX) and across two
processes (tf.distribute.MultiWorkerMirroredStrategy; torch.distributed with gloo and
DistributedDataParallel on the generated torch module), and examples/train_digits.py.

The doc includes every file of docs/training/ verbatim; a fast test keeps the two equal.
Each training case runs tests/training_worker.py in a fresh process (devices and the Keras
backend are fixed when a framework starts; the three one-device examples, which fix neither,
share one), in its own process group, under a timeout that kills the whole group. Three steps of the smallest spec's model (irv2_small, 149x149, batch
2 per replica) each; a case needs 20-90 s of CPU time (docs/training.md has the times).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_irc

DOC = ROOT / "docs" / "training.md"
CODE = ROOT / "docs" / "training"
WORKER = ROOT / "tests" / "training_worker.py"
TIMEOUT = 900  # seconds for one case: ten times the CPU time the slowest needs (about 90 s)

training = [pytest.mark.slow, pytest.mark.training]


def included_blocks(markdown: str) -> dict[str, str]:
    """The fenced block after each `<!-- file: PATH -->` line of the doc, by PATH."""
    pattern = re.compile(r"^<!-- file: (\S+) -->\n```\w*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return {path: body for path, body in pattern.findall(markdown)}


def test_doc_includes_every_example_file_verbatim():
    blocks = included_blocks(DOC.read_text())
    files = {str(p.relative_to(ROOT)) for p in CODE.glob("*.py")}
    assert set(blocks) == files
    for path, body in blocks.items():
        assert body == (ROOT / path).read_text(), f"docs/training.md's copy of {path} is stale"


def run_group(args: list[str], *, env: dict[str, str] | None = None) -> str:
    """Run `args` in a process group of its own; past TIMEOUT, kill the group (a launcher's
    workers too). Returns the output; fails the test on a timeout or a non-zero exit."""
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_BACKEND")}
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{args} ran past {TIMEOUT} s and was killed:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return output


def free_loopback_port() -> int:
    """A port the kernel hands out for 127.0.0.1 (free when it is asked; taken soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(case: str, out: Path, env: dict[str, str] | None = None) -> dict:
    run_group([sys.executable, str(WORKER), case, "--out", str(out)], env=env)
    return json.loads((out / f"{case}.json").read_text())


def assert_trains(steps: list[dict[str, float]]) -> None:
    """Three steps, every loss finite, and the total loss not the same at every step."""
    assert len(steps) == 3
    assert all(math.isfinite(value) for step in steps for value in step.values()), steps
    assert len({step["loss"] for step in steps}) > 1, steps


def assert_replicas_agree(variables: list[dict], replicas: int) -> None:
    """Every weight has one copy per replica, all equal, but batch norm's moving statistics:
    each replica updates its own from its share of the batch (Keras' default)."""
    assert variables and all(v["copies"] == replicas for v in variables)
    differ = {v["path"] for v in variables if v["spread"] != 0}
    assert all(path.endswith(("moving_mean", "moving_variance")) for path in differ), differ


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> dict:
    """The three one-device examples' results, by module name: one worker process trains
    them one after another (training_worker.case_one_device); xdist_group keeps their
    tests on one pytest-xdist worker, so the process runs once."""
    return run_case("one-device", tmp_path_factory.mktemp("one_device"))


one_device_group = pytest.mark.xdist_group("training_one_device")


@pytest.mark.slow
@pytest.mark.training
@one_device_group
def test_one_device_seed_model_trains_both_outputs(one_device):
    result = one_device["single_device"]
    assert result["outputs"] == ["head_dense", "aux_head_dense"]
    assert set(result["losses"][0]) == {"loss", "head_dense_loss", "aux_head_dense_loss"}
    for step in result["losses"]:  # the total is main + 0.4 x aux
        expected = step["head_dense_loss"] + 0.4 * step["aux_head_dense_loss"]
        assert step["loss"] == pytest.approx(expected, rel=1e-4)
    assert_trains(result["losses"])


@pytest.mark.slow
@pytest.mark.training
@one_device_group
def test_own_head_on_the_features(one_device):
    result = one_device["own_head"]
    assert result["outputs"] == ["my_classes"]
    assert result["params"] == 30_383_856 + 2144 * 5 + 5  # the features without the top + ours
    assert_trains(result["losses"])


@pytest.mark.slow
@pytest.mark.training
@one_device_group
def test_mixed_precision_keeps_float32_weights(one_device):
    result = one_device["mixed_precision"]
    assert result["variable_dtypes"] == ["float32"]
    assert result["compute_dtypes"] == ["bfloat16"]
    assert result["output_dtypes"] == ["float32"]  # the classifiers: Keras' mixed-precision advice
    assert_trains(result["losses"])


@pytest.mark.slow
@pytest.mark.training
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result = run_case("mirrored", tmp_path)
    assert result["replicas"] == 2
    assert [d.rsplit("/", 1)[1] for d in result["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert_trains(result["losses"])
    assert_replicas_agree(result["variables"], replicas=2)


@pytest.mark.slow
@pytest.mark.training
def test_multi_worker_mirrored_strategy_two_processes_and_the_chiefs_checkpoint(tmp_path):
    launcher = CODE / "launch_workers.py"
    worker = [str(WORKER), "multi-worker", "--out", str(tmp_path)]
    run_group([sys.executable, str(launcher), "--workers", "2", "--timeout", "840", *worker])
    workers = [json.loads((tmp_path / f"multi-worker-{i}.json").read_text()) for i in (0, 1)]
    for index, result in enumerate(workers):
        assert result["index"] == index and result["replicas"] == 2
        assert_trains(result["losses"])
    assert workers[0]["losses"] == workers[1]["losses"]  # one global loss, all-reduced
    loaded = run_case("load-checkpoint", tmp_path)
    # In one process without a strategy: the chief's checkpoint gives exactly the chief's
    # outputs, and the other worker's copy holds the same weights but batch norm's statistics.
    assert loaded["output_spread"] == [0.0, 0.0]
    assert loaded["weights"] > 0 and loaded["worker_spread_trainable"] == 0.0


@pytest.mark.slow
@pytest.mark.training
def test_jax_data_parallel_on_two_host_devices(tmp_path):
    pytest.importorskip("jax")
    result = run_case("jax", tmp_path)
    assert result["backend"] == "jax"
    assert result["devices"] == ["cpu:0", "cpu:1"]
    assert_trains(result["losses"])
    assert_replicas_agree(result["variables"], replicas=2)
    # One SPMD program: batch statistics over the whole batch, so every copy agrees.
    assert all(v["spread"] == 0 for v in result["variables"])


@pytest.mark.slow
@pytest.mark.training
def test_torch_distributed_data_parallel_two_processes(tmp_path):
    pytest.importorskip("torch")
    port = free_loopback_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--master-addr", "127.0.0.1", "--master-port", str(port), "--max-restarts", "0"]
    worker = [str(WORKER), "torch", "--out", str(tmp_path)]
    # gloo on the loopback interface only; IRC_TIMEOUT bounds every collective.
    run_group([*torchrun, *worker], env={"GLOO_SOCKET_IFNAME": "lo", "IRC_TIMEOUT": str(TIMEOUT)})
    ranks = [json.loads((tmp_path / f"torch-{i}.json").read_text()) for i in (0, 1)]
    assert [r["index"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    for r in ranks:
        assert_trains(r["losses"])
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank saw its own share of the data
    first, second = ranks
    assert len(first["gradients"]) == 318  # every parameter of irv2_small has a gradient
    assert all(norm > 0 for _, norm in first["gradients"].values())
    assert first["gradients"] == second["gradients"]  # all-reduced: equal on both ranks
    assert first["weights"] == second["weights"]
    # Batch norm's running statistics: DDP sends rank 0's to the others before each forward
    # pass, which then updates each rank's from its own share; only the counters agree.
    differ = {n for n in first["buffers"] if first["buffers"][n] != second["buffers"][n]}
    assert differ and all(n.endswith(("running_mean", "running_var")) for n in differ)


def test_digits_variant_module_is_current():
    result = run_irc("compile", "--check", "examples/irv2_digits.yaml", "--out", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.training
def test_digits_example_trains_and_writes_its_plot(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    script = ROOT / "examples" / "train_digits.py"
    args = ["--steps", "5", "--batch-size", "8", "--plot", str(plot)]
    output = run_group([sys.executable, str(script), *args])
    numbers = re.search(
        r"last step's loss (\S+); held out: loss (\S+), accuracy (\S+); plot: ", output
    )
    assert numbers, output[-2000:]
    loss, held_out_loss, accuracy = map(float, numbers.groups())
    assert math.isfinite(loss) and math.isfinite(held_out_loss) and 0 <= accuracy <= 1
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "5/5" in output  # keras' progress bar reached the last step
