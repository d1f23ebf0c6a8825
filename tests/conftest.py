"""Shared fixtures: the repository's specs, checked once per test session; the
parallel run's defaults and groups (tests/README.md)."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from irc_cnn.compiler.pipeline import Result, check_file

ROOT = Path(__file__).resolve().parent.parent
SPECS = {
    "inception_v4": ROOT / "specs" / "inception_v4.yaml",
    "inception_resnet_v1": ROOT / "specs" / "irv1.yaml",
    "inception_resnet_v2": ROOT / "specs" / "irv2.yaml",
}
SPEC_FILES = sorted((ROOT / "specs").rglob("*.yaml"))
# keras.applications' deeper versions of a specs/keras network (ResNet101 and ResNet152 of
# ResNet50, DenseNet169 and DenseNet201 of DenseNet121): each spec extends its base and
# changes repeat counts only, so its generated code is the base's with other loop bounds.
# The tests that build every spec whole at its default input leave them to
# tests/test_keras_applications.py, which builds each once, at 64x64, against
# keras.applications, irc's analysis and the torch module (and checks this list).
KERAS_PRESETS = frozenset(
    ROOT / "specs" / "keras" / f"{name}.yaml"
    for name in (
        "resnet101",
        "resnet152",
        "densenet169",
        "densenet201",
        *(f"efficientnet_b{n}" for n in range(1, 8)),
    )
)
BUILT_WHOLE = [path for path in SPEC_FILES if path not in KERAS_PRESETS]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The README's `python -m pytest` runs on every core (`-n auto --dist loadgroup`):
    here rather than in addopts, so that `-p no:xdist` still runs serially (pytest
    refuses an unknown `-n`); `-n 0` does too. An explicit `-n N` keeps loadgroup
    unless `--dist` says otherwise."""
    if not config.pluginmanager.hasplugin("xdist"):
        return  # serial
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # never spawns more; groups as the controller chose
        config.option.loadgroup = worker.get("irc_dist") == "loadgroup"
        return
    if config.option.numprocesses is None and not config.option.usepdb:
        config.option.numprocesses = "auto"
    if config.option.numprocesses and config.option.dist == "no":
        config.option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """A worker parses the command line again, without the default set above; xdist
    tags its grouped tests only when told that the run is --dist loadgroup."""
    node.workerinput["irc_dist"] = node.config.option.dist


# Files with tests that run for a minute or more (training in several processes, the op
# limits): run first, so that under xdist no worker is left alone with one at the end
# while the other idles (a 108 s test collected late made a 15:37 run of 13:40 of work).
EARLY = ("test_training.py", "test_limits.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """EARLY's tests first, every file's in its order; then say so where xdist_group has
    no effect (pytest 9.2 with pytest-xdist 3.8 leave the grouped tests untagged,
    tests/README.md): the suite passes, but slower."""
    items.sort(key=lambda item: item.path.name not in EARLY)  # stable: files keep order
    if getattr(config.option, "loadgroup", False) and any(
        "@" not in item.nodeid for item in items if item.get_closest_marker("xdist_group")
    ):
        warnings.warn(
            pytest.PytestWarning(
                "xdist_group has no effect with this pytest and pytest-xdist "
                "(pytest-dev/pytest-xdist#1386): whole networks are built once per worker; "
                "install the test extra's pytest<9.2"
            ),
            stacklevel=1,
        )


def grouped(values: Iterable[Any], name: str, ids: Callable[[Any], str] = str) -> list:
    """Fixture params that send every test of one value to one xdist worker: a module
    fixture built from the value (a whole network) is then built once in the run, not
    once per worker that happens to run one of its tests."""
    return [
        pytest.param(v, id=ids(v), marks=pytest.mark.xdist_group(f"{name}:{ids(v)}"))
        for v in values
    ]


@pytest.fixture(scope="session", autouse=True)
def _own_check_cache(tmp_path_factory) -> None:
    """Every `irc check` the tests run, in process or in a subprocess (which inherits
    the environment), caches into a folder of this session, never the user's
    ~/.cache/irc. Caching stays on, as for users; tests of the uncached path pass
    --no-cache, and tests/test_cache.py gives each test its own folder."""
    os.environ["IRC_CACHE_DIR"] = str(tmp_path_factory.mktemp("irc-cache"))


@pytest.fixture(scope="session", autouse=True)
def _at_root() -> None:
    """Spec paths in diagnostics and generated headers are relative to the repository."""
    os.chdir(ROOT)


@pytest.fixture(scope="session")
def checked() -> dict[str, Result]:
    return {name: check_file(path.relative_to(ROOT)) for name, path in SPECS.items()}


def run_cli_in_process(*args: str) -> tuple[int, str]:
    """The CLI's exit code and its stdout and stderr together, run in this process: no
    interpreter start (a fresh one costs about 0.3 s), for the tests that run it often."""
    from irc_cnn.compiler import cli

    out = io.StringIO()
    thresholds = gc.get_threshold()  # the CLI tunes the collector for one run
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse
                code = exc.code
    finally:
        gc.set_threshold(*thresholds)
    return code, out.getvalue()


def run_irc(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "irc_cnn.compiler.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


FRAMEWORK_BLOCKER = """\
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
from irc_cnn.compiler.cli import main
"""


def run_without_frameworks(body: str) -> subprocess.CompletedProcess:
    """Run Python `body` (which may call `main([...])`) where no framework can be
    imported, then fail if one was imported anyway."""
    check = "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n"
    code = FRAMEWORK_BLOCKER + body + "\n" + check
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)


def copy_worktree(dest: Path) -> Path:
    """Copy this working tree's files (tracked and new, not ignored) to `dest`: what a
    clone of it would hold, without build/ or .venv/ leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def unnested(layers: Iterable[Any]) -> list[Any]:
    """Keras layers (or operations) with a nested keras.Sequential's layers in its place
    (ConvNeXt's stem): the layers irc infers and a weights file's names reach."""
    return [
        inner
        for layer in layers
        for inner in (layer.layers if type(layer).__name__ == "Sequential" else [layer])
    ]


def calibrate_batch_norm(
    model: Any, rng: Any, shape: tuple[int, ...] = (), inference: bool = False
) -> None:
    """Batch-norm moving statistics near those of the data each layer sees, perturbed
    at random (variance x0.5-1.5, mean off by up to 0.2 standard deviations).

    The initial statistics (0 and 1) leave a deep network without residuals, such as
    MobileNet, shrinking its signal layer by layer until two images give the same
    output to 1e-7, and then a misplaced weight would not show in any comparison.
    Statistics taken from the data keep every layer's output near unit scale: those
    of one training step, where every layer sees normalised inputs, so that in
    inference the perturbations compound and the outputs grow with depth, errors
    alike (Inception-v4's reach 240,000, and its logits stay within the tolerance of
    torch's, where unit-scale statistics let them drift 5e-4 apart). `inference`: each
    layer's statistics are those of what it sees in inference instead, after the
    layers before it took theirs (one pass through the graph), every output near unit
    scale: where the outputs would grow faster than the rounding errors, as after MobileNetV3's hard swish and gates (conv_1_bn's
    outputs at 5,800, the logits 3.5e-4 of their size from torch's; 9e-6 this way).
    `shape`: the images' (height, width, channels) where the model takes any size.
    """
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    shape = model.input_shape[1:] if None not in model.input_shape[1:] else shape
    images = rng.uniform(-1.0, 1.0, (4, *shape)).astype("float32")
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # one training step sets the moving statistics to the batch's
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
        values = dict(zip((v.name for v in layer.weights), layer.get_weights()))
        _perturb(layer, values["moving_mean"], values["moving_variance"], rng)
    if not inference:
        return

    def calibrated(operation: Any) -> Any:
        if not isinstance(operation, keras.layers.BatchNormalization):
            return operation

        def call(x: Any, **kwargs: Any) -> Any:
            seen = keras.ops.convert_to_numpy(x).astype("float64")
            axes = tuple(range(seen.ndim - 1))
            _perturb(operation, seen.mean(axes), seen.var(axes), rng)
            return operation(x, training=False)

        return call

    model._run_through_graph(images, operation_fn=calibrated)


def _perturb(layer: Any, mean: Any, variance: Any, rng: Any) -> None:
    """A batch norm's moving statistics: `mean` and `variance`, perturbed at random.

    The variance is at least 0.01: a channel constant on the calibration batch (a dead
    ReLU, a map one pixel wide) would otherwise be divided by sqrt(epsilon), and each
    such layer would multiply the frameworks' rounding differences by 30."""
    import numpy as np

    variance = np.maximum(variance, 0.01)
    std = np.sqrt(variance)
    statistics = {
        "moving_mean": mean + 0.2 * std * rng.uniform(-1.0, 1.0, std.shape),
        "moving_variance": variance * rng.uniform(0.5, 1.5, std.shape),
    }
    values = [statistics.get(v.name, value) for v, value in zip(layer.weights, layer.get_weights())]
    layer.set_weights([v.astype("float32") for v in values])


def scaled_difference(got: Any, expected: Any) -> float:
    """The largest difference between two frameworks' outputs, relative to the outputs'
    scale where that is above 1: float32 keeps about 7 digits, so logits in the hundreds
    (Inception-v4's, with batch-norm statistics taken from the data) differ between
    TensorFlow and torch by more than 1e-4 in absolute terms at a relative 1e-6."""
    import numpy as np

    scale = max(1.0, float(np.abs(expected).max()))
    return float(np.abs(np.asarray(got) - np.asarray(expected)).max()) / scale
