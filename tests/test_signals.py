"""SIGTERM is handled like Ctrl-C: a render stopped by `kill` leaves no hidden temp file and says so in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musesynth.training.shipped import DEFAULT_MODEL, is_shipped

FAKE_FLUIDSYNTH = """#!/bin/sh
# writes part of the WAV, says it has started, then renders "forever"
while [ $# -gt 0 ]; do [ "$1" = "-F" ] && out="$2"; shift; done
echo half-a-wav > "$out"
touch "$STARTED"
exec sleep 120
"""


@pytest.mark.skipif(not is_shipped(DEFAULT_MODEL), reason="no shipped model in the package")
def test_sigterm_during_wav_rendering_cleans_up_like_ctrl_c(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "fluidsynth"
    exe.write_text(FAKE_FLUIDSYNTH)
    exe.chmod(0o755)
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    started = tmp_path / "started"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MUSESYNTH_SOUNDFONT": str(font),
           "STARTED": str(started), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "musesynth", "generate", "-q", "--length", "16", "-s", "1", "-o",
                             str(out)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 240
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.replace("\r", "\n").strip().splitlines()[-1] == "musesynth: interrupted", err  # after the bar
    assert "Traceback" not in err
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.wav"))
