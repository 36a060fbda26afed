"""What a run prints, on a terminal (a pty of 80 columns) and into a log file: no adverts or known-harmless
deprecations, no uncounted FLOPs, an integer v_num, bar metrics that fit, one plain line per epoch in a log."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import time

from _tiny_run import BIN, subprocess_env, tiny_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
NOISE = ("litlogger", "Tip:", "_pytree", "LeafSpec", "Total FLOPs", "FLOPs")
EPOCH_LINE = re.compile(r"^epoch (\d+)/3  loss \d\.\d{4}  acc \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}  "
                        r"\d+\.\d s$")


def run_in_pty(args: list[str], cwd, columns: int = 80, timeout: float = 600) -> str:
    """``spikegrad ARGS`` with stdout and stderr on a pseudo-terminal of ``columns`` columns; its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = subprocess_env({"TERM": "xterm-256color"})
    env.pop("COLUMNS", None)
    process = subprocess.Popen([BIN, *args], cwd=str(cwd), env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(master)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def visible_lines(output: str) -> list[str]:
    return [part for line in ANSI.sub("", output).split("\n") for part in line.split("\r")]


def test_terminal_output_is_quiet_and_fits_80_columns(tmp_path):
    config = tiny_config(tmp_path)
    output = run_in_pty(["fit", "--config", config, "--trainer.enable_progress_bar", "true",
                         "--trainer.enable_model_summary", "true"], tmp_path)
    lines = visible_lines(output)
    assert not [line for line in lines if any(word in line for word in NOISE)]
    assert "Total params" in output  # the model summary is there, without FLOPs
    bars = [line for line in lines if "v_num" in line]
    assert bars and all(re.search(r"v_num: 0(?!\.)", line) for line in bars)  # an integer, not 0.000
    assert any(re.search(r"loss: \d\.\d{3} val loss/acc: \d\.\d{3}/\d\.\d{3}", line) for line in bars)
    # Lightning's closing notice may follow the bar's last state on its line
    too_wide = [line for line in bars if len(line.split("`Trainer.fit`")[0].rstrip()) > 80]
    assert too_wide == []
    assert not [line for line in lines if EPOCH_LINE.match(line.strip())]  # the bar shows the epochs here


def test_a_log_file_gets_one_plain_line_per_epoch(tmp_path):
    config = tiny_config(tmp_path)
    result = subprocess.run([BIN, "fit", "--config", config, "--trainer.enable_progress_bar", "true",
                             "--trainer.enable_model_summary", "true"], cwd=str(tmp_path), env=subprocess_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    epochs = [EPOCH_LINE.match(line) for line in result.stdout.splitlines()]
    assert [int(m.group(1)) for m in epochs if m] == [1, 2, 3]
    assert not [line for line in output.splitlines() if any(word in line for word in NOISE)]
    assert "\r" not in output and not re.search(r"Epoch \d+/\d+ +[━╸╺]", output)  # no bar states
    assert "Total params" in output


def test_event_generation_reports_progress_and_chunks_give_the_same_events(tmp_path, capsys):
    import numpy as np
    import torch

    from spikegrad.data.emulator import emulate_saccade_events
    from spikegrad.data.event_digits import EventDigitsDataModule

    images = torch.rand(7, 8, 8)
    whole = emulate_saccade_events(images)
    parts = emulate_saccade_events(images[:3]) + emulate_saccade_events(images[3:])
    assert all(np.array_equal(a, b) for a, b in zip(whole, parts, strict=True))
    EventDigitsDataModule(data_dir=str(tmp_path)).prepare_data()
    lines = capsys.readouterr().out.splitlines()  # not a terminal here: a line before and one after
    assert lines[0].startswith("Generating the events of 1797 digits") and lines[0].endswith("...")
    assert re.match(r"Generating the events of 1797 digits .*: done in \d+\.\d s$", lines[1])
