"""Sweeps over the whole command tree, so commands added later are covered too.

- every ``--help`` renders as plain text (no rich-markup escapes such as ``\\[``)
  and teaches with an example;
- every example in every ``--help`` and in README.md parses as written (the
  command exists, its options exist, required arguments are there), and the
  examples of the store commands run as written against a temporary store;
- every path a command takes, pointed at an unwritable or odd place, gives one
  ``error:`` line and exit 1 — never a traceback.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from wasmetool.cli.main import cli_command, walk_commands

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.wasm"

try:
    from typer import _click as click
except ImportError:
    import click


def _leaves() -> list[tuple[tuple[str, ...], click.Command]]:
    return [(path, command) for path, command in walk_commands(cli_command())
            if not isinstance(command, click.Group) and not command.hidden]


def _visible() -> list[tuple[str, ...]]:
    """Command paths a user can see (hidden commands and their subtrees are skipped)."""
    found = []
    for path, command in walk_commands(cli_command()):
        if not command.hidden:
            found.append(path)
    return found


# ------------------------------------------------------------------ help


def test_the_sweep_sees_every_command() -> None:
    names = {" ".join(path[1:]) for path in _visible()}
    assert {"init", "build", "build precompiled", "list", "inspect", "run", "login", "logout",
            "push", "pull", "verify", "version"} <= names


@pytest.mark.parametrize("path", _visible(), ids=lambda p: " ".join(p[1:]) or "wasmetool")
def test_help_renders_cleanly_and_teaches(cli, path: tuple[str, ...]) -> None:
    result = cli(*path[1:], "--help")
    assert result.code == 0 and result.err == ""
    text = result.out
    assert text.startswith("Usage: ")
    assert "\\[" not in text and "\\]" not in text, f"markup escape in:\n{text}"
    assert "Example:" in text, f"'{' '.join(path)} --help' has no example"
    assert " a assemblyscript" not in text and " a AssemblyScript" not in text


def test_defaults_and_required_notes_render_plainly(cli) -> None:
    assert "[default: 300]" in cli("run", "--help").out
    assert "[required]" in cli("build", "precompiled", "--help").out


def test_arguments_keep_their_help(cli) -> None:
    """Typer <0.21 on Click 8.5 lost every argument's help text; pyproject pins Click."""
    assert "New (or empty) project directory." in cli("init", "--help").out
    assert "Where to push it" in cli("push", "--help").out
    for path, command in _leaves():
        text = cli(*path[1:], "--help").out
        for param in command.params:
            if isinstance(param, click.Argument) and param.help:
                assert param.help.split(".")[0][:40] in " ".join(text.split()), (path, param.name)


def test_build_help_shows_the_main_form(cli) -> None:
    text = cli("build", "--help").out
    assert "wasmetool build [LANGUAGE] [SRC]" in text
    assert "wasmetool build precompiled FILE.wasm" in text


# -------------------------------------------------------------- examples


def _example_lines(text: str) -> Iterator[str]:
    """Text after 'Example:' up to the end of that line (the raw docstring, unwrapped)."""
    for line in text.splitlines():
        marker = line.find("Example:")
        if marker >= 0:
            yield line[marker + len("Example:"):].strip()


def _invocations(line: str) -> Iterator[list[str]]:
    """The wasmetool invocations of a shell line: split on && | ; and drop comments."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    for token in [*lexer, ";"]:
        if token in ("&&", "||", "|", ";", "&", "<", ">", "(", ")"):
            if words and words[0].endswith("wasmetool"):
                yield words[1:]
            words = []
            if token in ("<", ">"):
                words = ["<redirect>"]  # the word after a redirection is a file, not an arg
        elif words == ["<redirect>"]:
            words = ["<done>"]
        else:
            words.append(token)


def _help_examples() -> list[tuple[str, list[str]]]:
    found = []
    for path, command in walk_commands(cli_command()):
        for line in _example_lines(command.help or ""):
            for args in _invocations(line):
                found.append((" ".join(path), args))
    return found


def _readme_examples() -> list[tuple[str, list[str]]]:
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"```(?:sh|console|bash)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if block.lstrip().startswith("$") and not line.startswith("$ "):
                continue  # console output, not a command
            line = line.removeprefix("$ ")
            for args in _invocations(line):
                found.append(("README.md", args))
    return found


def _parse(args: list[str]) -> None:
    """Parse like the CLI does, without running the command."""
    command = cli_command()
    ctx = command.make_context("wasmetool", list(args))
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # Click 8.2+ deprecates protected_args, older needs it
            warnings.simplefilter("ignore", DeprecationWarning)
            remaining = [*ctx.protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, remaining)
        assert sub is not None, f"no command {name}"
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)


def test_examples_were_found() -> None:
    assert len(_help_examples()) >= 15
    assert len(_readme_examples()) >= 10


@pytest.mark.parametrize(("where", "args"), _help_examples() + _readme_examples(),
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_example_parses_as_written(where: str, args: list[str]) -> None:
    try:
        _parse(args)
    except click.exceptions.UsageError as exc:
        pytest.fail(f"{where}: 'wasmetool {shlex.join(args)}' does not parse: {exc.format_message()}")


# The store commands' examples, run as written in a directory holding the files
# they name, against a store holding the images they name.
RUNNABLE = ("build precompiled", "list", "tag", "rm", "prune", "inspect", "version", "verify")


@pytest.fixture
def example_world(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("filter.wasm", "hello.wasm"):
        shutil.copy(HELLO, tmp_path / name)
    (tmp_path / "examples").mkdir()
    shutil.copy(HELLO, tmp_path / "examples" / "hello.wasm")
    return tmp_path


def _runnable(args: list[str]) -> bool:
    words = " ".join(a for a in args if not a.startswith("-"))
    return any(words == r or words.startswith(r + " ") for r in RUNNABLE)


def test_store_examples_run_as_written(cli, example_world: Path) -> None:
    examples = [(w, a) for w, a in _help_examples() + _readme_examples() if _runnable(a)]
    assert len(examples) >= 8
    for where, args in examples:
        for ref in ("me/filter:v1", "me/filter:v2", "me/hello:v1", "localhost:5000/hello:v1"):
            cli("build", "precompiled", "filter.wasm", "-t", ref)
        result = cli(*args)
        assert result.code == 0, f"{where}: 'wasmetool {shlex.join(args)}' failed: {result.err}"
        assert "Traceback" not in result.err


# ------------------------------------------------------------- odd paths


def _is_path_param(param: click.Parameter) -> bool:
    metavar = (param.metavar or "").upper()
    return isinstance(param.type, click.Path) or any(w in metavar for w in ("FILE", "DIR", "PATH"))


def _wants_directory(param: click.Parameter) -> bool:
    words = f"{param.name} {param.metavar or ''}".lower()
    return any(w in words for w in ("dir", "src", "source")) or (
        isinstance(param.type, click.Path) and not param.type.file_okay)


def _value(param: click.Parameter, files: dict[str, Path]) -> str:
    if _is_path_param(param):
        return str(files["dir"] if _wants_directory(param) else files["wasm"])
    return "127.0.0.1:9/me/filter:v1"  # port 9: nothing listens, nothing leaves the machine


def _invocation(path: tuple[str, ...], command: click.Command, target: click.Parameter,
                odd: str, files: dict[str, Path]) -> list[str]:
    args = list(path[1:])
    for param in command.params:
        if isinstance(param, click.Argument):
            value = odd if param is target else _value(param, files)
            args.append(value)
        elif param is target or param.required:
            value = odd if param is target else _value(param, files)
            args += [param.opts[0], value]
    return args


ODD_PATHS = {
    "under /proc": "/proc/wasmetool-sweep/x",
    "under /sys": "/sys/wasmetool-sweep",
    "under a file": "{file}/x",
    "an unreadable file": "/proc/self/mem",
}


def _path_cases() -> list[tuple[tuple[str, ...], str, str]]:
    cases = []
    for path, command in _leaves():
        for param in command.params:
            if _is_path_param(param) and param.name:
                for label in ODD_PATHS:
                    cases.append((path, param.name, label))
    return cases


class _Hung(BaseException):
    pass


def _within(seconds: int, cli, args: list[str]):  # type: ignore[no-untyped-def]
    """Run the CLI in-process; a command still running after ``seconds`` fails the test."""

    def hung(*_: object) -> None:
        raise _Hung(f"'wasmetool {shlex.join(args)}' still runs after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        return cli(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails (tests send traffic to 127.0.0.1 only)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address):  # type: ignore[no-untyped-def]
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(111, "the sweep test allows loopback only")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


def test_path_sweep_covers_the_commands_that_take_paths() -> None:
    covered = {" ".join(path[1:]) for path, _, _ in _path_cases()}
    assert {"init", "build precompiled", "run", "inspect"} <= covered


@pytest.mark.parametrize(("path", "param_name", "label"), _path_cases(),
                         ids=lambda v: " ".join(v[1:]) if isinstance(v, tuple) else v)
def test_an_odd_path_gives_one_line(cli, tmp_path: Path, loopback_only: None,
                                    path: tuple[str, ...], param_name: str, label: str) -> None:
    command = dict(_leaves())[path]
    target = next(p for p in command.params if p.name == param_name)
    files = {"wasm": tmp_path / "filter.wasm", "dir": tmp_path / "project", "file": tmp_path / "afile"}
    shutil.copy(HELLO, files["wasm"])
    files["dir"].mkdir()
    files["file"].write_text("a file, not a directory")
    odd = ODD_PATHS[label].format(file=files["file"])
    if label == "an unreadable file" and _wants_directory(target):
        odd = str(files["file"])  # a file where a directory belongs
    args = _invocation(path, command, target, odd, files)

    result = _within(20, cli, args)
    lines = result.err.strip().splitlines()
    assert result.code == 1, f"'wasmetool {shlex.join(args)}' exited {result.code}: {result.err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"'wasmetool {shlex.join(args)}' printed:\n{result.err}")


# ---------------------------------------------------------- output format


def _output_cases() -> list[tuple[str, ...]]:
    cases = []
    for path, command in _leaves():
        for param in command.params:
            if "--output" in getattr(param, "opts", []) and "path" not in (param.help or "").lower():
                cases.append(path)
    return cases


def test_output_sweep_covers_the_data_commands() -> None:
    covered = {" ".join(path[1:]) for path in _output_cases()}
    assert {"list", "inspect", "verify", "version", "init", "push", "pull", "login"} <= covered


@pytest.mark.parametrize("path", _output_cases(), ids=lambda p: " ".join(p[1:]))
def test_an_unknown_output_format_is_refused(cli, tmp_path: Path, loopback_only: None,
                                             path: tuple[str, ...]) -> None:
    command = dict(_leaves())[path]
    output = next(p for p in command.params if "--output" in getattr(p, "opts", []))
    files = {"wasm": tmp_path / "filter.wasm", "dir": tmp_path / "new-project"}
    shutil.copy(HELLO, files["wasm"])
    args = _invocation(path, command, output, "no-such-format", files)
    result = cli(*args)
    assert result.code == 1 and result.out == ""
    line = _one_line(result.err)
    assert "'no-such-format'" in line and "format" in line, line
    assert not files["dir"].exists()


# ------------------------------------------------- an unusable WASMETOOL_HOME

SERVES_UNTIL_STOPPED = {("wasmetool", "run")}  # its paths are swept above; it would serve


@pytest.mark.parametrize("label", ["under /proc", "under a file"])
def test_an_unusable_home_gives_one_line_everywhere(cli, tmp_path: Path, loopback_only: None,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    label: str) -> None:
    files = {"wasm": tmp_path / "filter.wasm", "dir": tmp_path / "project", "file": tmp_path / "afile"}
    shutil.copy(HELLO, files["wasm"])
    files["dir"].mkdir()
    files["file"].write_text("a file, not a directory")
    monkeypatch.setenv("WASMETOOL_HOME", ODD_PATHS[label].format(file=files["file"]))
    monkeypatch.setenv("WASMETOOL_KEYRING", "file")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    swept = 0
    for path, command in _leaves():
        if path in SERVES_UNTIL_STOPPED:
            continue
        args = list(path[1:])
        for param in command.params:
            if isinstance(param, click.Argument):
                args.append(_value(param, files))
            elif param.required:
                args += [param.opts[0], _value(param, files)]
        if path[-1] == "init":
            args[-1] = str(tmp_path / "new-project")
        result = _within(20, cli, args)
        swept += 1
        lines = result.err.strip().splitlines()
        assert result.code in (0, 1), f"'wasmetool {shlex.join(args)}': {result.err}"
        if result.code == 1:
            assert len(lines) == 1 and lines[0].startswith("error: "), (
                f"'wasmetool {shlex.join(args)}' printed:\n{result.err}")
    assert swept >= 12


# ---------------------------------------------------------- usage errors


@pytest.mark.parametrize("path", [p for p, _ in _leaves()], ids=lambda p: " ".join(p[1:]))
def test_usage_errors_point_at_the_commands_own_help(cli, path: tuple[str, ...]) -> None:
    command = dict(_leaves())[path]
    wanted = f"(see '{' '.join(path)} --help')"
    unknown = cli(*path[1:], "--no-such-flag")
    assert unknown.code == 1 and unknown.err.strip().endswith(wanted), unknown.err
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and param.opts[0] != "--help":
            missing = cli(*path[1:], param.opts[0])
            assert missing.code == 1
            line = _one_line(missing.err)
            assert "requires an argument" in line and line.endswith(wanted), line


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_build_names_an_unknown_language(cli, tmp_path: Path) -> None:
    line = _one_line(cli("build", "cobol", str(tmp_path), "-t", "me/f:v1").err)
    assert line.startswith("error: unknown language 'cobol'") and "rust" in line
    assert "project" not in _one_line(cli("build", str(tmp_path), "--bogus").err)
