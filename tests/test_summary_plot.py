"""irc summary and irc plot, on every spec under specs/.

The summary's totals are checked against Keras (parameters, activation
memory), its multiply-accumulates against the figure published for
keras.applications' InceptionResNetV2, and its minimum input by building the
generated model at that size and one pixel below. The diagrams are checked on
their DOT text (every block named, every concatenation's and residual sum's
channel arithmetic present and right) and rendered with Graphviz's `dot`.
docs/architecture/ must be what `python -m irc_cnn.backends.graphviz.gallery` writes.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import shutil

import pytest

from irc_cnn.backends.graphviz import gallery, plot
from irc_cnn.compiler import summary
from irc_cnn.compiler.cli import main
from irc_cnn.compiler.pipeline import check_bytes, check_file
from tests.conftest import ROOT, run_irc, run_without_frameworks

SPECS = [path.as_posix() for path in gallery.spec_files(ROOT)]
KERAS_SPEC = "specs/keras/inception_resnet_v2.yaml"
SEED_IRV2 = "specs/irv2.yaml"
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAVE_DOT, reason="Graphviz's `dot` is not installed (apt-get install graphviz)"
)
needs_keras_spec = pytest.mark.skipif(
    not (ROOT / KERAS_SPEC).is_file(),
    reason=f"{KERAS_SPEC} (keras.applications' network) does not exist yet",
)
REGENERATE = "run `python -m irc_cnn.backends.graphviz.gallery` to regenerate docs/architecture/"


@pytest.fixture(scope="module")
def results():
    out = {path: check_file(ROOT / path, display=path) for path in SPECS}
    for path, result in out.items():
        assert result.ok, (path, result.diagnostics)
    return out


@pytest.fixture(scope="module")
def summaries(results):
    return {path: summary.summarize(r.graph, path) for path, r in results.items()}


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- summary ---------------------------------------------------------------------------


def test_the_repository_has_specs():
    assert {"specs/inception_v4.yaml", "specs/irv1.yaml", SEED_IRV2} <= set(SPECS)


@pytest.mark.parametrize("path", SPECS)
def test_rows_add_up_to_the_totals(summaries, results, path):
    table, graph = summaries[path], results[path].graph
    assert sum(row.params for row in table.rows) == table.params == graph.params
    assert sum(row.macs for row in table.rows) == table.macs == graph.macs
    assert sum(row.activation_bytes for row in table.rows) == table.activation_bytes
    assert math.isclose(sum(table.share(row, "params") for row in table.rows), 1.0)
    assert sum(row.uses for row in table.rows) == len(graph.stages)
    expanded = summary.summarize(graph, path, expand=True)
    assert [row.name for row in expanded.rows] == [stage.name for stage in graph.stages]
    assert expanded.params == table.params


def test_seed_irv2_summary_collapses_repeats(summaries):
    table = summaries[SEED_IRV2]
    rows = {row.name: row for row in table.rows}
    assert [(row.name, row.uses) for row in table.rows] == [
        ("stem", 1),
        ("resnet_a", 10),
        ("reduction_a", 1),
        ("resnet_b", 20),
        ("aux_head", 1),
        ("reduction_b", 1),
        ("resnet_c", 10),
        ("head", 1),
    ]
    assert rows["resnet_b"].params == 20 * 1_175_840
    assert rows["resnet_b"].shape == (17, 17, 1152)
    assert rows["aux_head"].role == "aux"
    assert table.params == 58_841_682
    assert table.params_without_top == 53_318_816
    assert table.macs == 14_148_926_144
    # The largest single output is the stem's third conv, 147x147x64 floats.
    assert table.largest_activation == ("stem_conv3", (147, 147, 64))


@needs_keras_spec
def test_keras_applications_macs_match_the_published_figure(summaries):
    """keras.applications lists InceptionResNetV2 at 13.16 G multiply-adds for 299x299."""
    table = summaries[KERAS_SPEC]
    assert table.input == (299, 299, 3)
    assert abs(table.macs - 13.16e9) / 13.16e9 < 0.005, table.macs
    assert table.params == 55_873_736  # keras.applications' count with the top


@needs_keras_spec
def test_keras_applications_minimum_input_is_75(capsys):
    """keras.applications documents 75x75 as InceptionResNetV2's smallest input."""
    code, out, _ = run_main(capsys, "summary", "--format", "json", KERAS_SPEC)
    assert code == 0
    (data,) = json.loads(out)
    assert (data["min_input"], data["min_input_without_top"]) == (75, 75)


def test_seed_irv2_minimum_input(summaries):
    """The seed's head (8x8 average pool, valid) and aux head need the full 299."""
    table = summaries[SEED_IRV2]
    assert (table.min_input, table.min_input_without_top) == (299, 75)


def test_summary_text(capsys):
    code, out, _ = run_main(capsys, "summary", SEED_IRV2)
    assert code == 0
    assert re.search(
        r"^resnet_b +x20 +17x17x1152 +23,516,800 +40\.0% +6\.76 G +47\.8%", out, re.MULTILINE
    ), out
    assert re.search(
        r"^total +58,841,682 +100\.0% +14\.15 G +100\.0% +389\.5 MiB$", out, re.MULTILINE
    ), out
    assert "minimum input: 299x299 (75x75 without the top)" in out
    assert "activation memory: 389.5 MiB (408,457,288 bytes) for one image in float32" in out


def test_summary_markdown_and_expand(capsys):
    code, out, _ = run_main(capsys, "summary", "--format", "markdown", "--expand", SEED_IRV2)
    assert code == 0
    assert "| `resnet_b_20` |  | 17x17x1152 | 1,175,840 | 2.0% | 337.96 M | 2.4% |" in out
    assert "| `aux_head` (aux) |" in out
    assert "| **total** |  |  | **58,841,682** | **100.0%** | **14.15 G** | **100.0%** |" in out


def test_summary_json(capsys):
    code, out, _ = run_main(capsys, "summary", "--format", "json", SEED_IRV2)
    assert code == 0
    (data,) = json.loads(out)
    assert (data["params"], data["macs"]) == (58_841_682, 14_148_926_144)
    assert data["activation_bytes"] == 408_457_288
    assert "float32" in data["activation_memory"]
    resnet_b = next(row for row in data["rows"] if row["name"] == "resnet_b")
    assert resnet_b["uses"] == 20 and resnet_b["stages"][-1] == "resnet_b_20"


def test_summary_errors(capsys, tmp_path):
    code, _, err = run_main(capsys, "summary", "specs/nope.yaml")
    assert code == 2 and "no such file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / SEED_IRV2).read_text().replace("conv 1152 1x1 linear", "conv 1154 1x1 linear")
    )
    code, out, err = run_main(capsys, "summary", str(bad))
    assert code == 1 and "IRC301" in err and out == ""


def test_summary_and_plot_help():
    proc = run_irc("summary", "--help")
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    assert proc.returncode == 0
    assert "--expand" in text and "markdown" in text
    assert "Activation memory: the sum, over every layer the generated model creates" in text
    assert "times 4 bytes (float32), for one image" in text
    proc = run_irc("plot", "--help")
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0
    assert (
        "--block NAME" in text
        and ".svg, .png, .pdf or .dot" in text
        and "apt-get install graphviz" in text
    )


def test_summary_and_dot_import_no_framework(tmp_path):
    dot = str(tmp_path / "n.dot")
    proc = run_without_frameworks(
        f"assert main(['summary', 'specs/']) == 0\nassert main(['plot', 'specs/irv2.yaml', '-o', {dot!r}]) == 0"
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "n.dot").read_text().startswith("digraph")


# -- plot: the DOT text ----------------------------------------------------------------

CONCAT = re.compile(r"^((?:\d+ \+ )+\d+) = (\d+)$")
SUM = re.compile(r"^(\d+) \+ (?:([\d.]+)×)?(\d+) → (\d+)$")


def check_arithmetic(kind: str, text: str, channels: int) -> None:
    """The text adds up, and to the channels infer gave the layer."""
    if kind == "concat":
        terms, total = CONCAT.match(text).groups()
        assert sum(int(t) for t in terms.split(" + ")) == int(total) == channels, text
    elif kind == "gate":  # `1088 × 1x1x1088 → 17x17x1088`
        path, gate, out = re.fullmatch(r"(\d+) × (\S+) → (\S+)", text).groups()
        assert int(path) == int(gate.split("x")[-1]) == int(out.split("x")[-1]) == channels, text
    else:
        shortcut, _, residual, out = SUM.match(text).groups()
        assert int(shortcut) == int(residual) == int(out) == channels, text


# The graph layers the plot names: concatenations, sums (an Add layer's or Keras' `+`) and
# gates' products.
SUMS = ("concat", "add", "add_operation", "multiply")


@pytest.mark.parametrize("path", SPECS)
def test_network_plot_names_every_block_and_every_concat_and_sum(results, path):
    graph = results[path].graph
    dot = plot.network(results[path])
    for block in graph.spec.blocks:
        assert re.search(rf"\b{block}\b", dot), block
    for stage in graph.stages:  # a box per network entry, repeats as xN
        if stage.block and stage.count > 1 and stage.number == 1:
            assert re.search(rf"<B>{stage.block} ×\d+</B>|<B>{stage.name}</B>", dot), stage.name
    layers = {layer.name: layer for layer in graph.layers}
    boxes = plot.network_arithmetic(results[path])
    checked = 0
    for box, arithmetic in boxes.items():
        # every concat and sum of the box's (first) stage, and nothing else
        expected = sorted(
            layer.name for layer in graph.layers if layer.stage == box and layer.kind in SUMS
        )
        assert sorted(name for _, name, _ in arithmetic) == expected, box
        for kind, name, text in arithmetic:
            check_arithmetic(kind, text, layers[name].shape[-1])
            assert f"{kind} {text}" in dot
            checked += 1
    # at least three where the network sums or concatenates at all (VGG does neither)
    sums = [layer for layer in graph.layers if layer.kind in SUMS]
    assert checked >= min(3, len(sums))
    # the shape each network entry hands on labels an edge (a repeated block's box:
    # its last repeat's, where repeats change the shape, as DenseNet's do)
    last = {stage.path: stage for stage in graph.stages}
    for stage in last.values():
        assert f'label=" {plot.shape_text(stage.shape)}"' in dot


def test_seed_irv2_network_plot_reads_like_figure_15(results):
    dot = plot.network(results[SEED_IRV2])
    for text in (
        "<B>resnet_a ×10</B>",
        "<B>resnet_b ×20</B>",
        "<B>resnet_c ×10</B>",
        "concat 384 + 384 + 384 = 1152",  # Reduction-A
        "concat 1152 + 384 + 288 + 320 = 2144",  # Reduction-B
        "sum 1152 + 0.1×1152 → 1152",
        "sum 2144 + 0.1×2144 → 2144",
        'resnet_b_1 -> aux_head [label=" 17x17x1152"]',
        '"(aux_head output)" [label=<Auxiliary output>',
        'head -> "(output)" [label=" 1001"]',
    ):
        assert text in dot, text


@needs_keras_spec
def test_keras_applications_plot_keeps_slims_branch_order(results):
    dot = plot.network(results[KERAS_SPEC])
    assert "concat 384 + 384 + 320 = 1088" in dot  # mixed_6a
    assert "concat 384 + 288 + 320 + 1088 = 2080" in dot  # mixed_7a
    assert "<B>block8 ×9</B>" in dot and "<B>block8_10</B>" in dot
    assert "sum 2080 + 2080 → 2080" in dot  # the last C block is not scaled


@pytest.mark.parametrize("path", SPECS)
def test_block_plots_draw_every_concat_and_sum_of_the_block(results, path):
    graph = results[path].graph
    assert plot.blocks(results[path])
    for block in plot.blocks(results[path]):
        dot = plot.block(results[path], block)
        assert f"{graph.spec.title}: {block}" in dot
        stage = next((s.name for s in graph.stages if s.block == block), None)
        if stage is None:  # used only inside other blocks
            continue
        mine = [layer for layer in graph.layers if layer.stage == stage]
        ops = [layer for layer in mine if layer.kind in ("conv", "maxpool", "avgpool", "dense")]
        for layer in ops:  # one box per op
            # DOT quotes a name that starts with a digit (NASNet's `0_concat`)
            assert re.search(rf'^\t"?{layer.name}"? \[label=<', dot, re.MULTILINE), layer.name
        for layer in mine:
            if layer.kind in ("concat", "add"):
                kind = "concat" if layer.kind == "concat" else "sum"
                label = re.search(
                    rf'^\t"?{layer.name}"? \[label=<(?:Filter concat|\+)<BR/>([^>]*)>',
                    dot,
                    re.MULTILINE,
                )
                assert label, layer.name
                check_arithmetic(kind, label.group(1), layer.shape[-1])


def test_reduction_a_plot_shows_table_1_parameters(results):
    dot = plot.block(results[SEED_IRV2], "reduction_a")
    for text in (
        "3x3 Conv (n=384 stride 2 V)",
        "1x1 Conv (k=256)",
        "3x3 Conv (l=256)",
        "3x3 Conv (m=384 stride 2 V)",
        "3x3 MaxPool (stride 2 V)",
        "Filter concat<BR/>384 + 384 + 384 = 1152",
        "k=256, l=256, m=384, n=384",
    ):
        assert text in dot, text


NESTED = b"""\
name: nested
title: Nested
input: [16, 16, 8]
classes: 10
builder: {name: create_nested}
blocks:
  unit:
    params: [f]
    residual: {branches: [[conv f 1x1, conv 8 3x3 linear]], activation: relu}
  stage:
    params: {f: 4}
    seq: [conv 8 1x1, {unit: {f: 2*f, repeat: 3}}]
network:
  - conv 8 3x3
  - residual: {branches: [conv 2 1x1, conv 3 3x3], project: conv 8 1x1 linear}
  - {stage: {f: 3}}
  - stage x2
head: [gap, dense classes]
"""


def test_plot_of_blocks_inside_blocks():
    """A block used only inside another is drawn once, as its first use builds it, with
    the value its parameter has there (until the program IR, every repeat of the inner
    use was drawn, one after the other)."""
    result = check_bytes(NESTED, "nested.yaml")
    assert plot.blocks(result) == ["unit", "stage"]
    dot = plot.block(result, "unit")
    assert "as built by its first use, 'stage_1'" in dot
    assert "stage_1_unit_1_b1_conv1 [label=<1x1 Conv (f=6)>" in dot
    assert "stage_1_unit_1_add [label=<+<BR/>8 + 8 → 8>" in dot
    assert "stage_1_unit_2" not in dot
    assert "1x1 Conv (2*f=6)" not in dot  # the inner template says `f`, not the caller's `2*f`
    arithmetic = plot.network_arithmetic(result)
    assert [name for _, name, _ in arithmetic["stage_2"]] == [
        f"stage_2_unit_{i}_add" for i in (1, 2, 3)
    ]
    network = plot.network(result)
    assert "<B>stage ×2</B>" in network and "uses unit" in network


def test_plot_of_a_residual_written_in_the_network():
    """Its concat and sum are named as infer names them (`concat`, `add`; `_concat` and
    `_add` before, so the concat's total fell back to the project's 8 channels)."""
    result = check_bytes(NESTED, "nested.yaml")
    arithmetic = plot.network_arithmetic(result)["residual"]
    assert arithmetic == [("concat", "concat", "2 + 3 = 5"), ("sum", "add", "8 + 8 → 8")]
    layers = {layer.name for layer in result.graph.layers}
    assert {"concat", "add"} <= layers


def test_plot_of_a_spec_the_program_cannot_express(tmp_path):
    """A depth multiplier given by a parameter: the program IR, which plot draws, cannot
    hold it, so the check refuses the spec with its line (exit 1, no traceback, no file)."""
    spec = tmp_path / "dm.yaml"
    spec.write_bytes(NESTED.replace(b"[conv f 1x1,", b"[{dwconv: {kernel: 3, multiplier: f}},"))
    proc = run_irc("plot", str(spec), "-o", str(tmp_path / "dm.dot"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "dm.yaml:9:" in proc.stderr
    assert "error[IRC407]: a dwconv's depth multiplier must be a number" in proc.stderr
    assert not (tmp_path / "dm.dot").exists()


def test_plot_is_identical_across_hash_seeds(tmp_path):
    """Set and dict order may not reach the DOT text: two processes with different
    hash seeds write the same bytes, for the network and a block."""
    written = []
    for seed in ("0", "12345"):
        files = []
        for block in ((), ("--block", "resnet_b")):
            out = tmp_path / f"{seed}{len(block)}.dot"
            proc = run_irc("plot", SEED_IRV2, "-o", str(out), *block, env={"PYTHONHASHSEED": seed})
            assert proc.returncode == 0, proc.stderr
            files.append(out.read_bytes())
        written.append(files)
    assert written[0] == written[1]
    assert b"resnet_b" in written[0][0] and b"Filter concat" in written[0][1]


def test_plot_misuse(capsys, tmp_path):
    code, _, err = run_main(
        capsys, "plot", SEED_IRV2, "-o", str(tmp_path / "x.dot"), "--block", "resnet_d"
    )
    assert code == 2
    assert "no block 'resnet_d'; its blocks are: stem, resnet_a, reduction_a" in err
    code, _, err = run_main(capsys, "plot", SEED_IRV2, "-o", str(tmp_path / "x.gif"))
    assert code == 2 and ".svg, .png, .pdf or .dot" in err
    code, _, err = run_main(capsys, "plot", "specs", "-o", str(tmp_path / "x.dot"))
    assert code == 2 and "one spec" in err


def test_missing_dot_is_a_clear_error(tmp_path):
    """Without Graphviz on PATH: exit 2, the Debian package named, and .dot still works."""
    env = {"PATH": str(tmp_path)}  # the interpreter is run by its full path
    proc = run_irc("plot", SEED_IRV2, "-o", str(tmp_path / "n.svg"), env=env)
    assert proc.returncode == 2
    assert "install the Debian package `graphviz` (apt-get install graphviz" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "n.svg").exists()
    proc = run_irc("plot", SEED_IRV2, "-o", str(tmp_path / "n.dot"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "n.dot").read_text().startswith("digraph inception_resnet_v2 {")


@needs_dot
def test_svg_and_png_render(capsys, tmp_path):
    code, out, _ = run_main(capsys, "plot", SEED_IRV2, "-o", str(tmp_path / "n.svg"))
    assert code == 0 and "wrote" in out
    svg = (tmp_path / "n.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    assert "resnet_b ×20" in svg and "384 + 384 + 384 = 1152" in svg
    code, _, _ = run_main(
        capsys, "plot", SEED_IRV2, "--block", "resnet_b", "-o", str(tmp_path / "b.png")
    )
    assert code == 0
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- docs/architecture -------------------------------------------------------------------


def svg_text(svg: str) -> list[str]:
    """What an SVG says (node and edge titles, every text), without its coordinates."""
    return re.findall(r"<title>(.*?)</title>|<text[^>]*>(.*?)</text>", svg)


def test_docs_architecture_dot_files_are_current():
    sources, index = gallery.expected(ROOT)
    out = ROOT / gallery.OUT
    expected = {f"{name}.{suffix}" for name in sources for suffix in ("dot", "svg")} | {
        gallery.INDEX
    }
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert present == expected, f"{sorted(present ^ expected)}: {REGENERATE}"
    assert (out / gallery.INDEX).read_text() == index, REGENERATE
    for name, source in sources.items():
        assert (out / f"{name}.dot").read_text(encoding="utf-8") == source, (
            f"{name}.dot is stale: {REGENERATE}"
        )


@needs_dot
def test_docs_architecture_svgs_are_renderings_of_their_dot():
    """Not byte for byte: `dot` stamps its version and lays text out with local fonts."""
    out = ROOT / gallery.OUT
    for path in sorted(out.rglob("*.dot")):
        fresh = plot.render(path.read_text(encoding="utf-8"), "svg").decode("utf-8")
        committed = path.with_suffix(".svg").read_text(encoding="utf-8")
        assert svg_text(committed) == svg_text(fresh), (
            f"{path.with_suffix('.svg')} is stale: {REGENERATE}"
        )


def test_readme_shows_the_irv2_diagram():
    readme = (ROOT / "README.md").read_text()
    assert "](docs/architecture/inception_resnet_v2/network.svg)" in readme
    assert (ROOT / "docs/architecture/inception_resnet_v2/network.svg").is_file()


# -- against Keras (whole networks) --------------------------------------------------------


def module_of(result):
    name = result.spec.name
    if not (ROOT / "generated" / f"{name}.py").is_file():
        pytest.fail(f"generated/{name}.py is missing: run `irc compile specs`")
    return importlib.import_module(f"generated.{name}")


@pytest.mark.slow
def test_seed_irv2_builds_at_its_minimum_input_and_not_one_pixel_below(
    results, summaries, monkeypatch
):
    """299 with the top (the built default, above) and 75 without; Keras itself refuses 298 and 74."""
    keras = pytest.importorskip("keras")
    table = summaries[SEED_IRV2]
    module = module_of(results[SEED_IRV2])
    create = getattr(module, results[SEED_IRV2].spec.builder.name)
    assert (table.min_input, table.min_input_without_top) == (299, 75)
    assert (module.MIN_INPUT_SIZE, module.MIN_INPUT_SIZE_NO_TOP) == (299, 75)

    small = table.min_input_without_top
    model = create(include_top=False, input_shape=(small, small, 3))
    assert model.output.shape[1:] == (1, 1, 2144)
    assert isinstance(model, keras.Model)
    for include_top, size in ((True, table.min_input - 1), (False, small - 1)):
        with pytest.raises(ValueError, match=f"at least {size + 1}"):
            create(include_top=include_top, input_shape=(size, size, 3))
    # The builder's check is not the only thing in the way: without it Keras
    # itself fails one pixel below, when a valid-padded window no longer fits.
    monkeypatch.setattr(module, "MIN_INPUT_SIZE", 1)
    monkeypatch.setattr(module, "MIN_INPUT_SIZE_NO_TOP", 1)
    for include_top, size in ((True, table.min_input - 1), (False, small - 1)):
        with pytest.raises(ValueError, match="would be zero or negative"):
            create(include_top=include_top, input_shape=(size, size, 3))


def test_a_network_op_without_a_layer_of_its_own_gets_no_box():
    """`linear` between ops builds no layer (infer records none); the plot skips it
    instead of looking its layer up (a KeyError before)."""
    from irc_cnn.compiler.pipeline import check_bytes

    text = (
        b"name: lin\ntitle: Lin\ninput: [16, 16, 3]\nclasses: 4\nbuilder: {name: create_lin}\n"
        b"network: [conv 8 3x3, linear]\nhead: [gap, dense classes softmax]\n"
    )
    result = check_bytes(text, "lin.yaml")
    assert result.ok
    dot = plot.network(result)
    assert re.findall(r"^\s*(\w+) \[label=", dot, re.MULTILINE) == ["conv", "head"]


LINEAR_ACT = b"""\
name: lin
title: Lin
input: [16, 16, 8]
classes: 10
builder: {name: create_lin}
blocks:
  unit:
    params: {a: relu}
    seq: [conv 8 1x1 linear, act a, conv 8 1x1]
network:
  - {unit: {a: linear}}
  - unit
head: [gap, dense classes]
"""


def test_an_act_that_builds_no_layer_gets_no_box():
    """`act a` with a = linear at the block's first use makes no layer (infer and the
    generated code skip it): the plot drew a 'Linear activation' box for it."""
    result = check_bytes(LINEAR_ACT, "lin.yaml")
    layers = {layer.name for layer in result.graph.layers}
    assert "unit_1_a" not in layers and "unit_2_a" in layers
    dot = plot.block(result, "unit")
    assert "activation" not in dot
    assert "unit_1_conv1 -> unit_1_conv2" in dot


def test_pdf_is_a_format_dot_renders(tmp_path):
    """-o x.pdf was refused as an unknown format; without `dot` it now says what is missing."""
    env = {"PATH": str(tmp_path)}
    proc = run_irc("plot", SEED_IRV2, "-o", str(tmp_path / "n.pdf"), env=env)
    assert proc.returncode == 2
    assert "a .pdf file" in proc.stderr and "apt-get install graphviz" in proc.stderr
    assert "cannot tell what to write" not in proc.stderr


@needs_dot
def test_pdf_renders(capsys, tmp_path):
    code, out, _ = run_main(capsys, "plot", SEED_IRV2, "-o", str(tmp_path / "n.pdf"))
    assert code == 0 and out == f"wrote {tmp_path / 'n.pdf'}\n"
    assert (tmp_path / "n.pdf").read_bytes()[:5] == b"%PDF-"
