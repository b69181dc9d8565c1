"""Progress on long work: a status line on a terminal, nothing anywhere else.

The status line itself (derive/progress.py), the ``derive`` command's (which speaks
only after a second), and ``python -m benchmarks``'s, on a real pseudo-terminal.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
import time

import pytest

from derive import cli
from derive.progress import StatusLine
from tests.conftest import ROOT

ERASE = "\r\033[K"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run_on_a_terminal(args: list[str], cwd) -> tuple[int, str, str]:
    """Run ``args`` with standard error on a pseudo-terminal and standard output on
    a pipe; return the exit status, stdout and what the terminal received."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "COLUMNS": "200"},
    )
    os.close(follower)
    received = bytearray()

    def read() -> None:  # drained all along, so the terminal's buffer never fills
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the process closed its side
                return
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    stdout, _ = process.communicate(timeout=600)
    reader.join(timeout=60)
    os.close(leader)
    return process.returncode, stdout.decode(), received.decode()


def test_the_status_line_rewrites_itself_and_is_erased():
    stream = Terminal()
    with StatusLine("work: ", stream=stream) as status:
        status("one")
        status("two")
    assert stream.getvalue() == f"{ERASE}work: one{ERASE}work: two{ERASE}"


def test_nothing_is_written_where_there_is_no_terminal():
    stream = io.StringIO()
    with StatusLine("work: ", stream=stream) as status:
        status("one")
    assert stream.getvalue() == ""


def test_with_a_delay_quick_work_says_nothing():
    stream = Terminal()
    with StatusLine("work: ", delay=60, stream=stream) as status:
        status("one")
    assert stream.getvalue() == ""


def test_with_a_delay_a_long_step_is_announced_while_it_runs():
    stream = Terminal()
    with StatusLine("work: ", delay=0.05, stream=stream) as status:
        status("a long step")
        deadline = time.monotonic() + 10
        while "a long step" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue() == f"{ERASE}work: a long step"
        status("the next step")
    assert stream.getvalue().endswith(f"{ERASE}work: the next step{ERASE}")


def test_a_line_wider_than_the_terminal_is_cut(monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    stream = Terminal()
    with StatusLine("work: ", stream=stream) as status:
        status("x" * 100)
    shown = stream.getvalue().split(ERASE)[1]
    assert shown == "work: " + "x" * 10 + "..."


@pytest.mark.parametrize("spec", ["seed_unrolled.toml", "small_regression.toml"])
def test_derive_says_what_it_is_doing_on_a_terminal(
    spec, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(cli, "STATUS_DELAY", 0.0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.chdir(ROOT)
    assert cli.main([f"specs/{spec}", "--out", str(tmp_path)]) == 0
    shown = terminal.getvalue()
    assert f"{ERASE}derive: specs/{spec}: building the network and deriving" in shown
    assert f"derive: specs/{spec}: printing the derivation in LaTeX" in shown
    if "unrolled" in spec:
        assert f"specs/{spec}: unrolling d_loss_d_W1 (" in shown
    else:
        assert f"specs/{spec}: printing the gradients as NumPy" in shown
    assert shown.endswith(ERASE)  # erased before the list of files is printed
    assert capsys.readouterr().out.startswith("wrote ")


def test_derive_counts_the_specs(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "STATUS_DELAY", 0.0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.chdir(ROOT)
    cli.main(["specs/seed.toml", "specs/small_regression.toml", "--out", str(tmp_path)])
    assert "derive: specs/seed.toml (1 of 2): " in terminal.getvalue()
    assert "derive: specs/small_regression.toml (2 of 2): " in terminal.getvalue()


def test_derive_is_silent_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "STATUS_DELAY", 0.0)
    monkeypatch.chdir(ROOT)
    assert cli.main(["specs/seed_unrolled.toml", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_derive_on_a_real_terminal(tmp_path):
    """A pseudo-terminal, so ``isatty`` is the real one; the delay is set to 0 so
    that a quick spec is enough."""
    code = (
        "import sys; from derive import cli; cli.STATUS_DELAY = 0.0; "
        f"sys.exit(cli.main(['specs/seed.toml', '--out', {str(tmp_path)!r}]))"
    )
    status, stdout, terminal = run_on_a_terminal([sys.executable, "-c", code], ROOT)
    assert status == 0, terminal
    assert "derive: specs/seed.toml: building the network" in terminal
    assert terminal.endswith(ERASE)
    assert "\033" not in stdout and "wrote " in stdout


@pytest.mark.slow  # runs the benchmarks
def test_benchmarks_show_progress_on_a_terminal(tmp_path):
    status, stdout, terminal = run_on_a_terminal(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)], ROOT
    )
    assert status == 0, terminal
    first = re.match(r"\r\033\[Kbenchmarks: \[1/(\d+)\] (.*?)\r", terminal)
    assert first, terminal[:200]
    total = int(first.group(1))
    assert first.group(2) == "derivation time, vectorized, depth 2, width 4"
    assert f"benchmarks: [{total}/{total}] " in terminal  # every piece counted
    assert f"benchmarks: [{total + 1}/" not in terminal
    assert "seed 1-3-3-1, 1 sample, float64: torch loss.backward(), turn 2 of 2" in (
        terminal
    )
    assert "8-16-16-10, batch 4: derive, vectorized, turn 1 of 2" in terminal
    assert terminal.endswith(ERASE)
    assert "\033" not in stdout and stdout.startswith("## Machine")
