"""Build benchmark: cold and warm (cache hit) `wasmetool build` per language, and its
overhead over running the same compiler commands directly.

For each language whose local toolchain is complete (tinygo, assemblyscript,
rust, cpp), in a fresh WASMETOOL_HOME:

* cold  - `wasmetool init` then `wasmetool build` of the new project (no build
          products yet; the machine's download caches - Go modules, npm, crates -
          are used as they are, so this is "first build of a new project");
* warm  - `wasmetool build` again, unchanged: answered from the build cache;
* direct - the exact compiler commands the builder runs (recorded from it), run
          directly with the same warm compiler caches, after a one-line edit of
          the main source file (the edit-build loop);
* tool  - `wasmetool build --no-cache` in the same state, after another one-line
          edit (compile + validate + store + process start-up).
          ratio = tool / direct (target <= 1.1); extra = tool - direct in seconds.
* validate - the share of `tool` spent checking the module (wasmetool.module_info.proxy_abi_version:
          wasm validation + ABI marker, no code generation);
* inspect - for comparison, wasmetool.module_info.inspect_module (a full compile, as `inspect` does),
          which compiles the module with wasmtime.

Usage: .venv/bin/python bench/build.py [--repeat N] [LANGUAGE ...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def wasmetool() -> list[str]:
    exe = Path(sys.executable).parent / "wasmetool"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wasmetool.cli.main"]


def timed_cli(*args: str, check: bool = True) -> float:
    started = time.perf_counter()
    done = subprocess.run([*wasmetool(), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise SystemExit(f"wasmetool {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return elapsed


class TimingRunner:
    """A CommandRunner that runs each command quietly and times it."""

    def __init__(self) -> None:
        self.commands: list[tuple[list[str], Path, dict[str, str]]] = []
        self.seconds = 0.0

    def __call__(self, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str] | None = None) -> None:
        command = [str(a) for a in argv]
        self.commands.append((command, cwd, dict(env or {})))
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.seconds += time.perf_counter() - started


def main_source(inputs: list[Path]) -> Path:
    """The largest source file of the project (main.go, index.ts, lib.rs, filter.cc)."""
    sources = [p for p in inputs if p.suffix in (".go", ".ts", ".rs", ".cc", ".cpp", ".c")
               and "node_modules" not in p.parts]
    return max(sources, key=lambda p: p.stat().st_size)


def edit(source: Path, marker: str) -> None:
    """Append a comment (// works in Go, AssemblyScript, Rust and C++)."""
    with source.open("a") as handle:
        handle.write(f"\n// bench edit: {marker}\n")


def bench_language(language: str, workdir: Path, repeat: int) -> dict[str, object] | None:
    from wasmetool.builder.base import get_builder
    from wasmetool.module_info import inspect_module
    from wasmetool.module_info import proxy_abi_version as built_module_abi

    builder = get_builder(language)
    project = workdir / f"{language}-bench"
    missing = builder.missing_local_tools(project)
    if missing:
        print(f"{language}: skipped, missing {'; '.join(missing)}", file=sys.stderr)
        return None
    timed_cli("init", str(project), "--language", language, "--disable-prompt")
    tag = f"bench/{language}:v1"
    cold = timed_cli("build", str(project), "-t", tag)
    warm = statistics.median(timed_cli("build", str(project), "-t", tag) for _ in range(repeat))

    directs, tools = [], []
    out = workdir / f"{language}.wasm"
    source = main_source(builder.cache_inputs(project))
    for round_ in range(repeat):
        # The edit-build loop: each build follows a one-line edit of the main source.
        edit(source, f"direct {round_}")
        runner = TimingRunner()
        builder.build_local(project.resolve(), out, runner)
        directs.append(runner.seconds)
        edit(source, f"tool {round_}")
        tools.append(timed_cli("build", str(project), "-t", tag, "--no-cache"))
    data = out.read_bytes()
    started = time.perf_counter()
    built_module_abi(data, "bench")
    validate = time.perf_counter() - started
    started = time.perf_counter()
    inspect_module(data, "bench")
    inspect = time.perf_counter() - started
    direct, tool = statistics.median(directs), statistics.median(tools)
    return {"language": language, "cold": cold, "warm": warm, "direct": direct, "tool": tool,
            "ratio": tool / direct if direct else float("nan"), "overhead": tool - direct, "validate": validate,
            "inspect": inspect,
            "size": len(data),
            "commands": [shlex.join([Path(c[0]).name, *c[1:]]) for c, _, _ in runner.commands]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("languages", nargs="*",
                        default=["tinygo", "assemblyscript", "rust", "cpp"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wasmetool-bench-build-") as tmp:
        os.environ["WASMETOOL_HOME"] = str(Path(tmp) / "home")
        for language in args.languages:
            print(f"benchmarking {language} ...", file=sys.stderr, flush=True)
            row = bench_language(language, Path(tmp), args.repeat)
            if row:
                rows.append(row)
    header = (f"{'language':<15}{'cold s':>9}{'warm s':>9}{'direct s':>10}{'tool s':>9}"
              f"{'ratio':>8}{'extra s':>9}{'validate s':>12}{'inspect s':>11}{'size':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['language']:<15}{r['cold']:>9.2f}{r['warm']:>9.2f}{r['direct']:>10.2f}"
              f"{r['tool']:>9.2f}{r['ratio']:>7.2f}x{r['overhead']:>9.2f}{r['validate']:>12.3f}{r['inspect']:>11.2f}"
              f"{r['size']:>11,}")
    print()
    print("cold: init + first build; warm: unchanged rebuild (build-cache hit, includes process")
    print("start-up); direct: the builder's compiler commands run by hand after a one-line source")
    print("edit (warm compiler caches); tool: wasmetool build after another one-line edit;")
    print("ratio = tool / direct (target <= 1.1); extra = tool - direct;")
    print("validate: the build's module check (part of tool); inspect: inspect_module (a full")
    print("wasmtime compile, as `inspect` does), shown for comparison, not part of tool.")
    for r in rows:
        for command in r["commands"]:
            print(f"  {r['language']}: {command}")


if __name__ == "__main__":
    main()
