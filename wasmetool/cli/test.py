"""`wasmetool test`: run YAML test cases through the filter in-process, no Envoy needed."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wasmetool.cli.output import check_output, output_option, print_json
from wasmetool.errors import WasmetoolError


def register(app: typer.Typer) -> None:
    @app.command("test")
    def test(
        files: list[Path] = typer.Argument(
            None, metavar="[FILE.yaml...]",
            help="Test files. None: the *.test.yaml files of the project in --project "
                 "(default: the current directory), whose filter is built first."),
        keyword: list[str] = typer.Option(
            [], "--keyword", "-k",
            help="Run only cases whose name contains this text (repeatable: any matches; "
                 "'not TEXT' excludes)."),
        junit_xml: Path | None = typer.Option(None, "--junit-xml",
                                              help="Also write a JUnit XML report here."),
        project: Path = typer.Option(Path("."), "--project",
                                     help="Project directory (with wasmetool.toml) whose "
                                          "filter test files without 'filter:' use."),
        tag: str | None = typer.Option(None, "--tag", "-t",
                                       help="Store ref for the project build (default "
                                            "wasmetool-test/<project>:latest)."),
        output: str = output_option(),
    ) -> None:
        """Run YAML test cases through the filter in-process: no Envoy, no sockets.

        Each case sends one request (headers, body, trailers) through a fresh instance
        of the filter, feeds it the upstream's response and answers to its http calls,
        moves a virtual clock, then checks status, headers, body, logs, metrics and local
        replies. A failing case prints a diff and the tail of the call trace; the exit
        code is 1. In a project directory, a bare `wasmetool test` builds the filter
        (through the build cache) and runs the project's *.test.yaml files.

        Example: wasmetool test tests/hello.test.yaml -k header --junit-xml report.xml
        """
        from wasmetool.testing.cases import (
            ModuleSource,
            load_case_file,
            results_json,
            run_case,
            select,
        )
        from wasmetool.testing.cases import (
            junit_xml as render_junit,
        )
        from wasmetool.testing.project import build_project, project_test_files

        check_output(output)
        started = time.perf_counter()
        paths = list(files or [])
        default_module = None
        if not paths:
            if not (project / "wasmetool.toml").is_file():
                raise WasmetoolError(
                    f"no test files given and {project} is not a project (no wasmetool.toml)",
                    "give FILE.yaml, or run in a directory made by wasmetool init")
            paths = project_test_files(project)
            if not paths:
                raise WasmetoolError(f"no *.test.yaml files in project {project}",
                                     "add one, e.g. tests/filter.test.yaml (see docs/testing.md)")
        case_files = [load_case_file(p) for p in paths]     # every file checked before running
        if any(cf.filter is None for cf in case_files):
            if not (project / "wasmetool.toml").is_file():
                missing = next(cf.path for cf in case_files if cf.filter is None)
                raise WasmetoolError(f"{missing}: no filter: given and {project} is not a "
                                     "project (no wasmetool.toml)",
                                     "add 'filter: path/to/filter.wasm' (or a store ref), or "
                                     "use --project DIR")
            default_module = build_project(project, tag)
        modules = ModuleSource(default_module)
        selected = [(cf, case) for cf in case_files for case in select(cf.cases, keyword)]
        if not selected:
            raise WasmetoolError(f"no case matched -k {' / '.join(keyword)}",
                                 "check the case names")
        results = []
        for cf, case in selected:
            results.append(run_case(case, modules.get(cf)))
        seconds = time.perf_counter() - started
        if junit_xml is not None:
            from wasmetool.store.files import atomic_write

            atomic_write(junit_xml, render_junit(results, seconds).encode())
        failed = [r for r in results if not r.passed]
        if output == "json":
            print_json(results_json(results, seconds))
        else:
            for r in results:
                mark = "PASS" if r.passed else "FAIL"
                print(f"{mark}  {r.case.file}::{r.case.name}  ({r.seconds * 1000:.0f} ms)")
                if not r.passed:
                    for line in r.report().splitlines():
                        print(f"      {line}")
            print(f"{len(results)} case{'s' if len(results) != 1 else ''}: "
                  f"{len(results) - len(failed)} passed, {len(failed)} failed "
                  f"({seconds:.2f} s)")
        if failed:
            raise typer.Exit(1)
