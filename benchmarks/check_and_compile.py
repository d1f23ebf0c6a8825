"""How long `irc check` and `irc compile` take, and how they scale.

Run from the repository root: `python benchmarks/check_and_compile.py`.
Prints a markdown table; the numbers in benchmarks/README.md came from it.

1. `irc check specs/` in a fresh interpreter beside `python -c "import keras"`
   in the same run (irc check must cost a small fraction of a framework import).
2. `irc compile` of all specs into a scratch folder, in-process.
3. check + compile of synthetic specs of 100, 1,000 and 10,000 blocks; the
   10,000/1,000 time ratio shows whether cost grows linearly (target <= 12).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from irc_cnn.backends import output  # noqa: E402
from irc_cnn.backends.keras import emit  # noqa: E402
from benchmarks.synthetic import synthetic_spec  # noqa: E402
from irc_cnn.compiler.cli import load_all, tune_gc  # noqa: E402
from irc_cnn.compiler.pipeline import check_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def wall(command: list[str], repeats: int) -> float:
    """Median wall time of a command in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=False, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    tune_gc()  # as `irc` does
    python = sys.executable
    rows = []
    check = wall([python, "-m", "irc_cnn.compiler.cli", "check", "specs/"], 5)
    keras = wall([python, "-c", "import keras"], 3)
    rows.append(("`irc check specs/` (fresh process)", f"{check:.3f} s", ""))
    rows.append(('`python -c "import keras"` (fresh process)', f"{keras:.3f} s", ""))
    rows.append(("check / import keras", f"{check / keras:.2f}", "target: check < 0.5 s"))

    def compile_all() -> None:
        results = load_all(["specs"])
        files = {n: t for r in results for n, t in emit.render(r).items()}
        with tempfile.TemporaryDirectory() as out:
            output.write(files, Path(out))

    rows.append(("compile all specs (in-process)", f"{timed(compile_all, 3):.3f} s", ""))

    scaled = {}
    for blocks in (100, 1_000, 10_000):
        text = synthetic_spec(blocks).encode()

        def check_and_render(text: bytes = text, blocks: int = blocks) -> None:
            result = check_bytes(text, f"synthetic_{blocks}.yaml")
            assert result.ok, result.diagnostics[:1]
            emit.render(result)

        scaled[blocks] = timed(check_and_render, 3 if blocks < 10_000 else 1)
        rows.append((f"check + compile, {blocks:,} blocks", f"{scaled[blocks]:.3f} s", ""))
    ratio = scaled[10_000] / scaled[1_000]
    rows.append(("10,000 / 1,000 blocks", f"{ratio:.1f}", "target: <= 12 (linear: 10)"))

    print("| measurement | value | note |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
