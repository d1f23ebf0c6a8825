"""The `irc` command line: check, compile and list deviations of CNN specs.

Exit codes: 0 clean, 1 a spec has errors (or generated code is stale under
--check), 2 the command itself was misused (missing file, bad flag, a
`--set` that cannot be applied: no `=`, a VALUE that is not YAML, a PATH
that leads nowhere; an `irc explain` PATH that leads to no value). A `--set` that applies but makes the spec invalid is
an error in the spec asked for: exit 1, with the diagnostic pointing into
the argument.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .memory import DTYPES, FRAMEWORKS, OPTIMIZER_SLOTS, Training, parse_bytes

# The pipeline (Pydantic, PyYAML), the backends (Jinja2, graphviz) and even
# the diagnostics are imported by the commands that use them, so `irc --help`
# and `--version` start almost as fast as Python does (benchmarks/startup.py).
# compiler.memory imports only the graph's dataclasses.
if TYPE_CHECKING:
    from .pipeline import Result

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command was called wrongly: exit 2 with one line on stderr."""


def spec_files(paths: Sequence[str]) -> list[str]:
    """Each spec argument as check_file takes it: a file as given, a shipped spec's
    `irc:NAME` as given, a folder's *.yaml and *.yml files in sorted order."""
    from .shipped import UnknownShippedSpec, is_shipped, shipped_file

    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if is_shipped(raw):
            try:
                shipped_file(raw)
            except UnknownShippedSpec as exc:
                raise UsageError(f"{exc}; {exc.hint}") from None
            files.append(raw)
        elif path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            if not found:
                raise UsageError(f"no .yaml specs under {raw}")
            files.extend(p.as_posix() for p in found)
        elif path.is_file():
            files.append(raw)
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return files


def one_spec(raw: str, folder_refused: str) -> str:
    """The one spec (a file or `irc:NAME`) of a command that takes one; a folder is
    misuse, refused with `folder_refused`."""
    if Path(raw).is_dir():
        raise UsageError(folder_refused)
    return spec_files([raw])[0]


def checked(
    path: str | Path,
    args: argparse.Namespace,
    sets: Sequence[str] | None = None,
    scale: str | None = None,
    **options,
) -> Result:
    """check_file with the command's variant options (`--scale`, `--set`, `--input`);
    `sets` and `scale` replace the command's own (irc diff's per-side options).

    A `--set` that cannot be applied is misuse of the command (exit 2): its
    diagnostic is printed (to stderr; to stdout as a GitHub annotation under
    --format github, where CI reads them) and UsageError is raised.
    """
    from .pipeline import check_file

    result = check_file(
        path,
        sets=getattr(args, "set", ()) if sets is None else sets,
        scale=getattr(args, "scale", None) if scale is None else scale,
        input_size=getattr(args, "input", None),
        **options,
    )
    if result.set_misused:
        github = getattr(args, "format", None) == "github"
        print_diagnostics(
            [result], "github" if github else "text", sys.stdout if github else sys.stderr
        )
        label = result.diagnostics[0].span.file if result.diagnostics[0].span else "--set"
        option = label.split("[")[0]  # `--set[2]`, `--scale`, `--input`
        raise UsageError(f"a {option} argument cannot be applied (see above)")
    return result


def load_all(
    paths: Sequence[str],
    args: argparse.Namespace,
    paper: bool = False,
    presets: bool = False,
) -> list[Result]:
    """Check every spec; files are named as given (relative to the current folder).

    With `presets` (and no `--scale`), a spec with a `scales:` table is checked
    once more per preset, as `--scale NAME` would: `irc compile` writes each.
    """
    from .diagnostics import Note

    results = []
    for path in spec_files(paths):
        result = checked(path, args, paper=paper)
        results.append(result)
        if (
            presets
            and getattr(args, "scale", None) is None
            and result.ok
            and result.valid_spec.scale is None
        ):
            for name in result.valid_spec.scales:
                sized = checked(path, args, scale=name, paper=paper)
                note = Note(f"at the spec's scale {name!r} (--scale {name})")
                sized.diagnostics = [d.with_note(note) for d in sized.diagnostics]
                results.append(sized)
    return results


def print_error(text: str) -> None:
    """A line on stderr after all that stdout holds so far: where both streams go to one
    terminal or file, it starts a line of its own, after what it sums up."""
    sys.stdout.flush()
    print(text, file=sys.stderr)


def print_diagnostics(results: list[Result], fmt: str, out=None) -> None:
    """Each result's diagnostics to `out` (default: sys.stdout as it is at the call,
    so the check cache's redirection captures them)."""
    from . import diagnostics as diag
    from .pipeline import annotation_anchors

    out = sys.stdout if out is None else out

    for result in results:
        anchors = annotation_anchors(result.source) if fmt == "github" else {}
        for d in result.diagnostics:
            if fmt == "github":
                print(diag.render_github(d, result.file, result.lines, anchors), file=out)
            else:
                print(diag.render_text(d, result.lines), file=out)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def summary_line(result: Result) -> str:
    graph = result.graph
    outputs = ", ".join(_shape(s) for s in graph.outputs)
    return (
        f"{result.file}: ok: {result.valid_spec.name}, input {_shape(graph.input)}, "
        f"output{'s' if len(graph.outputs) > 1 else ''} {outputs}, "
        f"{graph.params:,} parameters, {_si(graph.macs)} multiply-accumulates"
    )


def _si(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return str(count)


def result_json(result: Result) -> dict:
    data: dict = {"file": result.file, "ok": result.ok}
    if result.ok:
        graph = result.graph
        data |= {
            "name": result.valid_spec.name,
            "input": list(graph.input),
            "outputs": [list(s) for s in graph.outputs],
            "params": graph.params,
            "macs": graph.macs,
            "stages": [
                {"name": s.name, "shape": list(s.shape), "params": s.params, "macs": s.macs}
                for s in graph.stages
            ],
        }
    data["diagnostics"] = [d.to_json() for d in result.diagnostics]
    return data


# -- commands ----------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    if args.no_cache:
        return check_and_print(args)[0]
    from . import cache

    return cache.check(args, spec_files(args.paths), check_and_print, "check")


def check_and_print(args: argparse.Namespace) -> tuple[int, list[Result], list[Path]]:
    """`irc check` without the cache: the exit code, the results, and no other file
    read (for the cache)."""
    results = load_all(args.paths, args, paper=args.paper, presets=True)
    if args.format == "json":
        print(json.dumps([result_json(r) for r in results], indent=2))
    else:
        print_diagnostics(results, args.format)
        if args.format == "text":
            for result in results:
                if result.ok:
                    print(summary_line(result))
            failed = sum(1 for r in results if not r.ok)
            errors = sum(len(r.diagnostics) for r in results)
            if failed:
                print_error(f"{errors} error(s) in {failed} of {len(results)} spec(s)")
    return (EXIT_OK if all(r.ok for r in results) else EXIT_ERRORS), results, []


def cmd_deviations(args: argparse.Namespace) -> int:
    from .source import describe

    results = load_all(args.paths, args)
    rows = []
    for result in results:
        # An invalid spec's annotations may not be what it means (and an unread one has none).
        if not result.ok or result.source is None:
            continue
        for dev in result.source.deviations:
            rows.append(
                {
                    "spec": result.file,
                    "file": dev.span.file,  # a base file's, for what `extends` inherited
                    "line": dev.span.line,
                    "column": dev.span.column,
                    "path": ".".join(map(str, dev.path)),
                    "value": dev.value,
                    "paper": dev.paper if dev.has_paper else None,
                    "seed": dev.seed if dev.has_seed else None,
                    "has_paper": dev.has_paper,
                    "has_seed": dev.has_seed,
                    "why": dev.why,
                }
            )
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            via = f" (inherited by {row['spec']})" if row["file"] != row["spec"] else ""
            print(f"{row['file']}:{row['line']}:{row['column']}: {row['path']}{via}")
            print(f"    used:  {describe(row['value'])}")
            if row["has_paper"]:
                print(f"    paper: {describe(row['paper'])}")
            if row["has_seed"]:
                print(f"    seed:  {describe(row['seed'])}")
            print(f"    why:   {row['why']}")
        print(f"{len(rows)} deviation(s) in {len(results)} spec(s)")
    bad = [r for r in results if not r.ok]
    print_diagnostics(bad, "text", sys.stderr)
    return EXIT_ERRORS if bad else EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    if args.check and args.prune:
        raise UsageError("--check writes and deletes nothing; run --prune without --check")
    if args.check and not args.no_cache:
        from . import cache

        # The key holds the output folders' file names too: a module that appears there
        # may be an orphan (and a deleted spec that a module names is a miss: see below).
        listing = [p.as_posix() for folder in output_folders(args) for p in folder.glob("*.py")]
        files = [*spec_files(args.paths), *sorted(listing)]
        return cache.check(args, files, check_generated, "compile")
    if args.check:
        return check_generated(args)[0]
    code, _, targets = generate(args)
    if code != EXIT_OK:
        return code
    from ..backends import output

    out = Path(args.out)
    created = _missing_ancestor(out)
    try:
        for folder, _ in targets:
            folder.mkdir(parents=True, exist_ok=True)
        orphans = [f for f in _findings(targets, args) if f.state == "orphaned"]
        written = output.write_all(targets, [f.path for f in orphans] if args.prune else ())
    except OSError as exc:
        if created is not None:
            _remove_empty(out, created)
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}") from None
    for path in written:
        print(f"wrote {path}")
    for found in orphans:
        if args.prune:
            print(f"removed {found.path} (generated from {found.spec}, which no longer writes it)")
        else:
            print_error(finding_message(found, args))
    if not written and not (args.prune and orphans):
        count = sum(len(files) for _, files in targets)
        print(f"{count} file(s) in {out} already up to date")
    return EXIT_OK


def _findings(targets: list[tuple[Path, dict]], args: argparse.Namespace) -> list:
    """output.findings of this run: its modules' header lines tell its specs' orphans.
    A run with --scale or --set writes only some of what its specs write in a plain
    run (`x_small.py`, not `x.py`), so there only a module whose spec is gone is one."""
    from ..backends import output

    plain = args.scale is None and not args.set
    given = {text.partition("\n")[0] for _, files in targets for text in files.values()}
    return output.findings(targets, given if plain else set(), Path(args.out).resolve().parent)


def finding_message(found, args: argparse.Namespace) -> str:
    """One line on a stale, missing or orphaned module, with the command that fixes it."""
    from ..backends import output

    again = output.regenerate_command(args.paths, args.out, args.set, args.backend, args.scale)
    if found.state == "orphaned":
        return (
            f"{found.path}: orphaned: generated from {found.spec}, which no longer writes it "
            f"(the spec is gone or renamed); run `{again} --prune` to delete it"
        )
    fix = "regenerate" if found.state == "stale" else "write it"
    return f"{found.path}: {found.state}; run `{again}` to {fix}"


def check_generated(args: argparse.Namespace) -> tuple[int, list[Result], list[Path]]:
    """`irc compile --check` without the cache: the exit code, the results, and the
    generated files compared (a cache entry records their hashes too)."""
    from ..backends import output
    from . import diagnostics as diag

    code, results, targets = generate(args)
    if code != EXIT_OK:
        return code, results, []
    found = _findings(targets, args)
    count = sum(len(files) for _, files in targets)
    if args.format == "json":
        rows = [
            {
                "file": f.path.as_posix(),
                "state": f.state,
                "spec": f.spec,
                "message": finding_message(f, args),
            }
            for f in found
        ]
        print(json.dumps({"ok": not found, "checked": count, "files": rows}, indent=2))
    elif args.format == "github":  # on the file, where there is one (a missing one is not)
        for f in found:
            span = diag.Span(f.path.as_posix(), 1, 1) if f.path.is_file() else None
            print(diag.render_github(diag.Diagnostic("IRC501", finding_message(f, args), span)))
    else:
        for f in found:
            print(finding_message(f, args))
    if not found and args.format == "text":
        print(f"{count} file(s) in {args.out} are up to date")
    # Every module in the output folders, not only this run's: a stray file's header
    # decides whether it is an orphan, so editing it must be a cache miss.
    written = {folder / name for folder, files in targets for name in files}
    compared = sorted(written | {path for folder, _ in targets for path in folder.glob("*.py")})
    root = Path(args.out).resolve().parent
    compared += [spec for folder, _ in targets for spec in output.header_specs(folder, root)]
    return (EXIT_ERRORS if found else EXIT_OK), results, compared


def output_folders(args: argparse.Namespace) -> list[Path]:
    """The folders `irc compile` writes modules into: --out, and its torch/ for torch."""
    from ..backends.output import TORCH_FOLDER

    out = Path(args.out)
    return [out] * (args.backend != "torch") + [out / TORCH_FOLDER] * (args.backend != "keras")


def generate(args: argparse.Namespace) -> tuple[int, list[Result], list[tuple[Path, dict]]]:
    """Check the specs and render every module `irc compile` writes: the exit code, the
    results, and (folder, {file name: text}) per backend; errors are printed here."""
    # The backends pull in Jinja2 only; no framework is imported here either.
    from ..backends.keras import emit
    from ..backends.torch import emit as torch_emit
    from .program import ProgramError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"cannot write to {out}: not a folder")
    results = load_all(args.paths, args, presets=True)
    if not all(r.ok for r in results):
        if args.format == "json":
            specs = [result_json(r) for r in results]
            print(json.dumps({"ok": False, "specs": specs, "files": []}, indent=2))
        else:
            print_diagnostics(results, args.format)
        print_error("nothing written: fix the errors above first")
        return EXIT_ERRORS, results, []
    owners: dict[str, str] = {}
    for result in results:
        module = f"{result.valid_spec.name}.py"
        if module in owners:
            print(
                f"{result.file}: error: writes {out / module} like {owners[module]}; "
                "give one of the specs another `name`",
                file=sys.stderr,
            )
            return EXIT_ERRORS, results, []
        owners[module] = result.file
    targets = []
    try:
        if args.backend in ("keras", "all"):
            files = {n: t for r in results for n, t in emit.render(r, out, args.set).items()}
            targets.append((out, files))
        if args.backend in ("torch", "all"):
            files = {n: t for r in results for n, t in torch_emit.render(r, out, args.set).items()}
            targets.append((out / torch_emit.OUT, files))
    except ProgramError as exc:
        print(f"error: the {args.backend} backend cannot express a spec: {exc}", file=sys.stderr)
        print("nothing written", file=sys.stderr)
        return EXIT_ERRORS, results, []
    return EXIT_OK, results, targets


def _missing_ancestor(folder: Path) -> Path | None:
    """The outermost folder that `folder.mkdir(parents=True)` would create, if any."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def _remove_empty(folder: Path, top: Path) -> None:
    """Undo a mkdir: remove `folder` and its parents up to `top`, while they are empty."""
    for path in (folder, *folder.parents):
        try:
            path.rmdir()
        except OSError:
            return
        if path == top:
            return


def cmd_explain(args: argparse.Namespace) -> int:
    from . import explain

    spec = one_spec(args.spec, f"irc explain shows a value of one spec; {args.spec} is a folder")
    result = checked(spec, args)
    if result.source is None:
        print_diagnostics([result], "text")
        return EXIT_ERRORS
    try:
        print("\n".join(explain.lines(result.source, result.spec, args.path)))
    except explain.NoValue as exc:
        raise UsageError(f"explain {args.path}: {exc}") from None
    if not result.ok:
        print_diagnostics([result], "text", sys.stderr)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from . import diff

    a, b = (
        one_spec(p, f"irc diff compares two spec files; {p} is not one") for p in (args.a, args.b)
    )
    results = [
        checked(a, args, sets=args.set_a, scale=args.scale_a),
        checked(b, args, sets=args.set_b, scale=args.scale_b),
    ]
    if not all(r.ok for r in results):
        print_diagnostics(results, "text", sys.stderr)
        return EXIT_USAGE  # as diff(1): 2 is trouble, 1 means "they differ"
    report = diff.diff(*results)
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
    else:
        print(diff.render(report))
    return EXIT_ERRORS if report["differs"] else EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from . import summary

    results = load_all(args.paths, args)
    if not all(r.ok for r in results):
        print_diagnostics([r for r in results if not r.ok], "text", sys.stderr)
        return EXIT_ERRORS
    if args.expand and len(results) > 1:
        raise UsageError("--expand shows the stages of one spec; several specs make one table")
    training = None
    if args.batch is not None or args.memory is not None:
        training = Training(args.batch or 1, args.dtype, args.optimizer, args.framework)
    tables = [
        summary.summarize(r.graph, r.file, args.expand, training, args.memory) for r in results
    ]
    if len(tables) > 1:
        text = {
            "json": lambda: json.dumps(summary.comparison_json(tables), indent=2) + "\n",
            "markdown": lambda: summary.render_comparison_markdown(tables),
            "text": lambda: summary.render_comparison_text(tables),
        }[args.format]()
    elif args.format == "json":
        text = json.dumps([summary.to_json(tables[0])], indent=2) + "\n"
    else:
        render = summary.render_markdown if args.format == "markdown" else summary.render_text
        text = render(tables[0])
    print(text, end="")
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    try:  # the backend needs the `graphviz` Python package (a dependency), not a framework
        from ..backends.graphviz import plot
    except ModuleNotFoundError as exc:
        if exc.name != "graphviz":
            raise
        raise UsageError("irc plot needs the `graphviz` Python package: pip install graphviz")
    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in plot.FORMATS:
        raise UsageError(
            f"cannot tell what to write from {args.output!r}: use .svg, .png, .pdf or .dot"
        )
    if out.parent.exists() and not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: {out.parent} is not a folder")
    files = spec_files([args.spec])
    if len(files) != 1:
        raise UsageError(f"irc plot draws one spec; {args.spec} holds {len(files)}")
    result = load_all(files, args)[0]
    if not result.ok:
        print_diagnostics([result], "text", sys.stderr)
        return EXIT_ERRORS
    from .program import ProgramError

    try:
        source = plot.block(result, args.block) if args.block else plot.network(result)
        data = plot.render(source, fmt)
    except plot.PlotError as exc:
        raise UsageError(str(exc)) from None
    except ProgramError as exc:  # plot draws the program IR, as the code backends print it
        print(f"error: irc plot cannot draw {result.file}: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    created = _missing_ancestor(out.parent)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        if created is not None:
            _remove_empty(out.parent, created)
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}")
    return EXIT_OK


def cmd_specs(args: argparse.Namespace) -> int:
    from . import settings
    from .layering import apply_scale, load_layered
    from .shipped import SHIPPED, SHIPPED_PREFIX, shipped_names

    for name in shipped_names():
        # The title `irc check` shows: with its base's settings and placeholders filled.
        source = load_layered(SHIPPED / f"{name}.yaml", SHIPPED_PREFIX + name)
        apply_scale(source, None, False)
        settings.fill_title(source)
        data = source.data
        title = data.get("title", "") if isinstance(data, dict) else ""
        print(f"{SHIPPED_PREFIX + name:<32} {title}")
    print(f"(files in {SHIPPED}; a spec extends one with `extends: {SHIPPED_PREFIX}NAME`)")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .json_schema import render

    print(render(), end="")
    return EXIT_OK


def cmd_codes(args: argparse.Namespace) -> int:
    from . import diagnostics as diag

    unknown = [code for code in args.codes if code.upper() not in diag.CODES]
    if unknown:
        raise UsageError(f"no diagnostic code {unknown[0]!r}; `irc codes` lists them all")
    for code in [c.upper() for c in args.codes] or diag.CODES:
        print(diag.describe_code(code))
    return EXIT_OK


def docs_folder() -> Path:
    """Where the installed package keeps docs/*.md (irc_cnn.docs, package data): the
    compiler's sibling folder, in the repository as installed (as for the shipped specs;
    an editable install cannot import a data folder under the regular package irc_cnn)."""
    folder = Path(__file__).resolve().parent.parent / "docs"
    if not folder.is_dir():
        raise UsageError("the documentation is not installed with this copy of irc")
    return folder


def cmd_docs(args: argparse.Namespace) -> int:
    topics = {path.stem: path for path in sorted(docs_folder().glob("*.md"))}
    if args.topic is None:
        for name, path in topics.items():
            title = path.read_text(encoding="utf-8").partition("\n")[0].lstrip("# ")
            print(f"{name:<20} {title}")
        print("\nrun `irc docs TOPIC` to read one")
        return EXIT_OK
    if args.topic not in topics:
        raise UsageError(f"no topic {args.topic!r}; topics: {', '.join(topics)}")
    print(topics[args.topic].read_text(encoding="utf-8"), end="")
    return EXIT_OK


class _Version(argparse.Action):
    """`--version`, read from the installed distribution only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print irc's version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("irc-cnn")
        except PackageNotFoundError:
            number = "(not installed: running from a source tree)"
        print(f"irc {number}")
        parser.exit()


def input_size(text: str) -> tuple[int, int]:
    """`224` or `224x192` (height x width) for --input."""
    height, x, width = text.partition("x")
    try:
        size = (int(height), int(width if x else height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H or HxW such as 224 or 224x192, got {text!r}")
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return size


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def memory_size(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- irc transfer --------------------------------------------------------------------


def cmd_transfer(args: argparse.Namespace) -> int:
    """Build SPEC's Keras model, copy SOURCE's weights into it by layer name, write them.

    Keras is imported here only, after the checks that need none (the output, the
    spec, a SOURCE file): every other command runs without a framework."""
    out = Path(args.output)
    if not out.name.endswith(".weights.h5"):
        raise UsageError(f"-o {args.output}: the output is a Keras `.weights.h5` file")
    if out.is_dir():
        raise UsageError(f"-o {args.output} is a folder; name the file to write")
    if not out.parent.is_dir():
        raise UsageError(f"-o {args.output}: no folder {out.parent}")
    if "@" not in args.source and not Path(args.source).is_file():
        raise UsageError(
            f"no such file: {args.source} (a source is a weights file or SPEC@NAME, "
            "e.g. irc:keras/inception_resnet_v2@imagenet)"
        )
    spec = one_spec(args.spec, f"irc transfer builds one spec; {args.spec} is a folder")
    result = checked(spec, args)
    if not result.ok:
        print_diagnostics([result], "text")
        return EXIT_ERRORS
    from ..backends.published import PublishedWeightsError

    try:
        from ..backends.keras import transfer as tr
    except ImportError as exc:
        raise UsageError(f"irc transfer needs Keras ({exc.name} is not installed)") from None
    model = tr.build(result)
    try:
        report = tr.transfer(model, args.source)
    except tr.TransferError as exc:
        raise UsageError(str(exc)) from None
    except PublishedWeightsError as exc:  # a download failed or was not the declared file
        print_error(f"irc: error: {exc}")
        return EXIT_ERRORS
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text(), end="")
    if args.strict and report.unexpected:
        print_error(
            f"irc: error: --strict: {len(report.unexpected)} layer(s) other than the "
            f"classifier start untrained: {', '.join(report.unexpected[:8])}; nothing written"
        )
        return EXIT_ERRORS
    import os
    import tempfile

    # A partial file of this run's own beside the output, renamed over it when whole.
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".weights.h5")
    os.close(handle)
    partial = Path(name)
    try:
        model.save_weights(partial)
        partial.replace(out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return EXIT_OK


# -- the parser ----------------------------------------------------------------

Argument = tuple[tuple[str, ...], dict[str, Any]]  # add_argument's flags and keywords


def arg(*flags: str, **options: Any) -> Argument:
    """One argument of a command, as add_argument takes it."""
    return flags, options


def formats(*choices: str, help: str = "default: text") -> Argument:
    """--format: the output forms a command prints, the first one by default."""
    return arg("--format", choices=choices, default=choices[0], help=help)


# The arguments several commands take, each written once; a command names them.
SHARED: dict[str, Argument] = {
    "paths": arg(
        "paths",
        nargs="+",
        metavar="PATH",
        help="spec files, folders of them, or irc:NAME for shipped specs (`irc specs` lists them)",
    ),
    "spec": arg(
        "spec",
        metavar="SPEC",
        help="a spec file, or irc:NAME for a shipped spec (`irc specs` lists them)",
    ),
    "--set": arg(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=(
            "override a value after loading, e.g. network.resnet_b.repeat=5, depth=0.5, "
            "'input=[149,149,3]' or 'network.aux_head=$delete' (list items by index or by "
            "the block or op they use; VALUE is YAML; repeatable; validated like the file: a "
            "value that makes the spec invalid exits 1, an argument that cannot be applied exits 2)"
        ),
    ),
    "--input": arg(
        "--input",
        type=input_size,
        metavar="H[xW]",
        help=(
            "the input's height and width (224, or 224x192), keeping its channels: short for "
            "--set 'input=[H, W, C]'"
        ),
    ),
    "--framework": arg(
        "--framework",
        choices=FRAMEWORKS,
        default=FRAMEWORKS[0],
        help="whose training step --batch estimates: jax (default; Keras under XLA, which "
        "frees each gradient once applied) or torch (PyTorch, which keeps every .grad and "
        "saves what each op's backward reads)",
    ),
    "--scale": arg(
        "--scale",
        metavar="NAME",
        help="build the spec at one of its `scales:` presets (width, depth, input); "
        "renames the spec and builder NAME_SCALE",
    ),
}


def shared(name: str, *flags: str, **changes: Any) -> Argument:
    """A shared argument under other flags (`--set-a`) or with other keywords."""
    own_flags, options = SHARED[name]
    return flags or own_flags, {**options, **changes}


def one_side(side: str) -> list[Argument]:
    """irc diff's --set and --scale for one of the two specs."""
    which = side.upper()
    return [
        shared("--set", f"--set-{side}", help=f"override a value of {which} (as --set elsewhere)"),
        shared("--scale", f"--scale-{side}", help=f"build {which} at this scale preset"),
    ]


@dataclass(frozen=True)
class Command:
    """A subcommand: the function it runs, its arguments in the order --help lists them
    (a name from SHARED, or an arg()), and its texts."""

    run: Callable[[argparse.Namespace], int]
    arguments: Sequence[str | Argument]
    help: str
    description: str
    epilog: str | None = None


COMMANDS: dict[str, Command] = {
    "check": Command(
        cmd_check,
        [
            "paths",
            arg(
                "--paper",
                action="store_true",
                help="substitute every annotated paper value and check again (shows the paper's own errors)",
            ),
            formats(
                "text",
                "json",
                "github",
                help="text for people, json for tools, github for Actions annotations",
            ),
            "--set",
            "--input",
            "--scale",
            arg(
                "--no-cache",
                action="store_true",
                help="check from scratch: neither read nor write the result cache",
            ),
        ],
        help="validate specs: syntax, references, every tensor's shape",
        description=(
            "Validate specs and print each one's output shape(s), parameter count and "
            "multiply-accumulates, or every problem found, with file, line and column."
        ),
        epilog=(
            "A clean result is cached, keyed by irc's version and code, the options and the "
            "sha256 of every file read (the spec and the files it extends), so an unchanged "
            "spec is not checked again; a spec with errors always is. The cache lives in "
            "$IRC_CACHE_DIR, else $XDG_CACHE_HOME/irc, else ~/.cache/irc; deleting it is safe."
        ),
    ),
    "compile": Command(
        cmd_compile,
        [
            "paths",
            arg("--out", default="generated", help="output package folder (default: generated)"),
            arg(
                "--check",
                action="store_true",
                help="write nothing; exit 1 if a generated module is stale, missing or orphaned",
            ),
            arg(
                "--prune",
                action="store_true",
                help="also delete orphaned modules: irc's own (by their header) whose spec is "
                "gone or writes other modules now",
            ),
            arg(
                "--backend",
                choices=("keras", "torch", "all"),
                default="keras",
                help="keras (default): Keras 3 modules in --out; torch: PyTorch modules in --out/torch; "
                "all: both",
            ),
            formats(
                "text",
                "json",
                "github",
                help="how to print errors and, with --check, modules out of date: text, json, "
                "or github for Actions annotations",
            ),
            "--set",
            "--scale",
            arg(
                "--no-cache",
                action="store_true",
                help="with --check: compare from scratch, neither reading nor writing the result cache",
            ),
        ],
        help="generate a Keras (or PyTorch) model builder per spec",
        description=(
            "Generate one Keras 3 module per spec (--backend torch: a PyTorch module). "
            "Writes atomically: if any spec has an error, nothing under --out changes. A module "
            "irc generated (its first line says so) is orphaned when its spec file is gone, or "
            "is one of the specs given and writes other modules now; --check reports orphans, "
            "--prune deletes them with the same all-or-nothing writes. Other files, and the "
            "modules of existing specs not given, are never touched."
        ),
        epilog=(
            "With --check, a clean result is cached as `irc check`'s is: keyed by irc's "
            "version and code (templates included), the options and the sha256 of every "
            "spec file read and every generated file compared, so an unchanged tree is not "
            "compiled again (--no-cache: always)."
        ),
    ),
    "deviations": Command(
        cmd_deviations,
        [
            "paths",
            formats("text", "json"),
            "--set",
            "--scale",
        ],
        help="list where specs depart from the paper, and why",
        description="List every annotated value: position, field, value used, paper's value, seed's value, reason.",
    ),
    "explain": Command(
        cmd_explain,
        [
            "spec",
            arg(
                "path",
                metavar="PATH",
                help="a dotted path into the spec, e.g. network.resnet_b.repeat",
            ),
            "--set",
            "--scale",
        ],
        help="show a value and every file (or --set) that set or overrode it",
        description=(
            "Show the value at a dotted PATH (e.g. blocks.resnet_b.seq.residual.project; list "
            "items by index or by the block or op they use, e.g. network.resnet_b.repeat), the "
            "file, line and column that set it, and what it overrode through extends, a scale "
            "preset and --set. A mapping or list is listed value by value, each with its own "
            "place; a value no file sets shows the spec language's default. A PATH that leads "
            "to no value is misuse (exit 2)."
        ),
    ),
    "diff": Command(
        cmd_diff,
        [
            shared("spec", "a", metavar="A"),
            shared("spec", "b", metavar="B"),
            formats("text", "json"),
            "--input",
            *one_side("a"),
            *one_side("b"),
        ],
        help="compare two specs: blocks, repeats, filters, parameters and cost",
        description=(
            "Blocks added, removed and changed (field by field), uses of each block, settings "
            "such as the input, and the deltas in parameters, multiply-accumulates (also in "
            "percent of A) and outputs. One spec under two settings: irc diff X X --set-b ..."
        ),
        epilog=(
            "Exit codes, as diff(1): 0 the specs are the same, 1 they differ, 2 trouble "
            "(a spec has errors, a file is missing, a bad flag)."
        ),
    ),
    "summary": Command(
        cmd_summary,
        [
            shared("paths", metavar="SPEC"),
            arg("--expand", action="store_true", help="one row per block use, not xN"),
            formats("text", "markdown", "json"),
            "--set",
            "--input",
            arg(
                "--batch",
                type=positive,
                metavar="B",
                help="estimate one training step's memory at batch B",
            ),
            arg(
                "--dtype",
                choices=tuple(DTYPES),
                default="float32",
                help="mixed: float32 weights, gradients and optimizer state, bfloat16 activations",
            ),
            arg(
                "--optimizer",
                choices=tuple(OPTIMIZER_SLOTS),
                default="momentum",
                help="sgd keeps no state, momentum one slot per weight, adam two (default: momentum)",
            ),
            "--framework",
            arg(
                "--memory",
                type=memory_size,
                metavar="SIZE",
                help="a memory size (16GiB, 24GB, 8000MiB): print the largest batch that fits",
            ),
            "--scale",
        ],
        help="table of each stage's shape, parameters, multiply-accumulates and memory",
        description=(
            "One row per network entry (a block repeated N times in a row is one row, xN) "
            "with its output shape, parameters, multiply-accumulates and each one's share of "
            "the total; then the totals, the smallest square input the network accepts (the "
            "smallest size at which every valid-padded window still fits; also without the "
            "top) and the activation memory of one image. Several specs make one comparison "
            "table: a row per spec (input, parameters, multiply-accumulates, FLOPs, outputs, "
            "minimum input, activation memory), with the change against the first spec in %. "
            "--batch adds the memory one training step needs (weights, gradients, optimizer "
            "state, activations kept for the backward pass); --memory, the largest batch that "
            "fits. Imports no framework."
        ),
        epilog=(
            "Activation memory: the sum, over every layer the generated model creates "
            "(convolutions, batch norms, activations, pools, concatenations, rescalings, sums, "
            "dropout, flatten, dense; not the input image), of its output's element count "
            "times 4 bytes (float32), for one image. It is what a forward pass holds if it "
            "keeps every layer's output, as training does for backpropagation; inference that "
            "frees each tensor after use needs much less. Multiply-accumulates count "
            "convolutions and dense layers at the spec's input size; FLOPs are 2 x "
            "multiply-accumulates. Training memory: docs/summary-and-plot.md says what each "
            "layer keeps for backpropagation."
        ),
    ),
    "plot": Command(
        cmd_plot,
        [
            "spec",
            arg(
                "-o",
                "--output",
                required=True,
                metavar="FILE",
                help="where to write: .svg, .png, .pdf or .dot",
            ),
            arg("--block", metavar="NAME", help="draw this block template instead"),
            "--set",
            "--scale",
        ],
        help="draw the network (or one block) as a diagram: .svg, .png, .pdf or .dot",
        description=(
            "Draw the network at block level, input at the bottom as in the paper's figures: "
            "one box per network entry (repeats as xN), the tensor shape on every edge, "
            "auxiliary heads, and the channel arithmetic of every concatenation, residual "
            "sum and gate (384 + 384 + 384 = 1152). --block draws one block template's "
            "branches, op by op, as its first use builds it, shortcuts and gates included."
        ),
        epilog=(
            "The format follows the file name. A .dot file needs nothing more; .svg, .png and "
            ".pdf are rendered by Graphviz's `dot` program (Debian/Ubuntu: apt-get install graphviz)."
        ),
    ),
    "transfer": Command(
        cmd_transfer,
        [
            arg(
                "source", metavar="SOURCE", help="a weights file, or SPEC@NAME (published weights)"
            ),
            "spec",
            arg("-o", "--output", required=True, metavar="OUT.weights.h5", help="where to write"),
            formats("text", "json", help="the report: text for people, json for tools"),
            arg(
                "--strict",
                action="store_true",
                help="fail (exit 1, nothing written) when a layer other than the classifier is new",
            ),
            "--set",
        ],
        help="start SPEC from another network's weights: copy every layer that matches by name",
        description=(
            "Build SPEC's Keras model and copy into it every weight of SOURCE whose layer "
            "name and shapes match (a base and its variants share the names of what they "
            "share), then write OUT. SOURCE is a weights file saved from an irc model "
            "(`.weights.h5` or the legacy `.h5`) or SPEC@NAME, weights a spec publishes "
            "(irc:keras/inception_resnet_v2@imagenet), loaded first into that spec's own "
            "model. A first convolution with another number of input channels is adapted "
            "(summed or repeated, as timm does); a classifier of another number of classes "
            "is re-initialised and reported as new. docs/weights.md has the details."
        ),
    ),
    "specs": Command(
        cmd_specs,
        [],
        help="list the specs shipped with irc: irc:NAME, for extends: and every command",
        description=(
            "List the shipped specs by the name `extends:` and every command take "
            "(`extends: irc:irv2`, `irc check irc:irv2`), with their titles and the folder "
            "they are installed in."
        ),
    ),
    "schema": Command(
        cmd_schema,
        [],
        help="print the JSON Schema of the spec language (for editors and check-jsonschema)",
        description=(
            "Print the JSON Schema (draft 2020-12) of a spec file, generated from irc's own "
            "models: structure, keys, types and ranges. It checks what an editor can check "
            "as you type; shapes, references and channel arithmetic need `irc check`."
        ),
    ),
    "codes": Command(
        cmd_codes,
        [
            arg("codes", nargs="*", metavar="CODE", help="show only these (e.g. IRC301)"),
        ],
        help="list the diagnostic codes (IRC301, ...): what each means, with an example",
        description="Every diagnostic code irc reports, its meaning and an example that gets it.",
    ),
    "docs": Command(
        cmd_docs,
        [
            arg("topic", nargs="?", metavar="TOPIC", help="e.g. spec-language, python"),
        ],
        help="print the documentation installed with irc (the spec language, ...)",
        description="Print one documentation topic as Markdown; without TOPIC, list the topics.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="irc",
        description=(
            "irc compiles CNN architecture specs (YAML) into Keras code. It checks every "
            "tensor's shape first, so a residual sum of 1154 and 1152 channels is an error "
            "with a file and line, not a crash inside a framework."
        ),
        epilog=(
            "Exit codes: 0 clean, 1 a spec has errors or output is stale (a --set or --input "
            "that makes a spec invalid included), 2 misuse (a missing file, a bad flag, a "
            "--set that cannot be applied: no '=', a VALUE that is not YAML, a PATH that "
            "leads nowhere; an explain PATH that leads to no value)."
        ),
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        texts = {"help": command.help, "description": command.description, "epilog": command.epilog}
        command_parser = sub.add_parser(name, **texts)
        for argument in command.arguments:
            flags, options = SHARED[argument] if isinstance(argument, str) else argument
            command_parser.add_argument(*flags, **options)
        command_parser.set_defaults(run=command.run)
    return parser


def tune_gc() -> None:
    """Collect garbage less often: a spec's IR is many small long-lived objects,
    and CPython's default thresholds make large specs cost more than linearly
    (measured in benchmarks/check_and_compile.py). mypy does the same."""
    gc.set_threshold(100_000, 50, 50)


def main(argv: Sequence[str] | None = None) -> int:
    tune_gc()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print_error(f"irc: error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
