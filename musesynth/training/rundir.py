"""A run folder that training owns while it runs: one training at a time (a lock), an earlier run never
replaced without ``--overwrite``, and temp files of a killed save cleared away."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from musesynth.errors import MusesynthError

OUTPUTS = ("best.pt", "last.pt", "summary.json", "metrics.csv", "config.json")


class RunDir:
    def __init__(self, path: Path, resume: bool, overwrite: bool) -> None:
        self.path, self.resume, self.overwrite = Path(path), resume, overwrite
        self._fd: int | None = None

    def __enter__(self) -> RunDir:
        if self.path.exists() and not self.path.is_dir():
            raise MusesynthError(f"run folder {self.path} is a file; choose another --run-name or -o")
        ours = any((self.path / n).exists() for n in (".lock", *OUTPUTS))
        if self.path.is_dir() and any(self.path.iterdir()) and not ours:
            raise MusesynthError(f"{self.path} exists and is not a musesynth run folder; choose another --run-name "
                                 f"or -o (nothing in it is touched)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o666)
        except OSError as exc:
            raise MusesynthError(f"cannot write the run folder {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise MusesynthError(f"another training is using {self.path} right now; wait for it or choose "
                                 f"another --run-name") from None
        self._clear_temp_files()
        done = [n for n in ("best.pt", "last.pt") if (self.path / n).exists()]
        if done and not self.resume:
            if not self.overwrite:
                self.__exit__()
                raise MusesynthError(f"{self.path} already holds a trained run ({', '.join(done)}); use --resume "
                                     f"to continue it, another --run-name, or --overwrite to replace it")
            for name in OUTPUTS:
                (self.path / name).unlink(missing_ok=True)
        return self

    def _clear_temp_files(self) -> None:
        """Remove what an atomic write killed mid-way left (``.best.pt.XXXX.tmp``): ours by name."""
        for name in OUTPUTS:
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
