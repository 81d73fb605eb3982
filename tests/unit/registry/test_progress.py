"""Progress bars appear only on a terminal."""

from __future__ import annotations

import pytest

from wasmetool.registry.progress import transfer_progress


def test_no_bars_when_stderr_is_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    with transfer_progress() as bars:
        assert bars.task("pull abc", 10) is None
    assert capsys.readouterr().err == ""


def test_bars_count_bytes_when_enabled() -> None:
    with transfer_progress(True) as bars:
        advance = bars.task("push abc", 100)
        assert advance is not None
        advance(60)
        advance(40)
        task = bars._progress.tasks[0]
        assert task.completed == 100 and task.finished
