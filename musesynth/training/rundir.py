"""A run folder that training owns while it runs: one training at a time (a lock), an earlier run never
replaced without ``--overwrite``, and temp files of a killed save cleared away.

Ours means our marker (``ownership.MARKER``, kind "run"), or, for a run made before the marker existed,
a config.json whose content training wrote. A folder whose files merely carry our names is the user's."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from musesynth.errors import MusesynthError
from musesynth.ownership import (
    MARKER,
    check_owned,
    describe,
    has_entries,
    is_plain_file,
    marker_kind,
    read_json,
    write_marker,
)

OUTPUTS = ("best.pt", "last.pt", "summary.json", "metrics.csv", "config.json")
LOCK = ".lock"
TENSORBOARD = "tensorboard"  # the event files' folder
HINT = "choose another --run-name or -o"


def legacy_run(path: Path) -> bool:
    """A run folder from before the marker: training's config.json (told by its content), or nothing but
    the empty lock file of a training killed before it wrote anything."""
    d = read_json(path / "config.json")
    if isinstance(d, dict) and {"resolved_model", "dataset_dir", "model"} <= d.keys():
        return True
    entries = list(path.iterdir())
    return [e.name for e in entries] == [LOCK] and is_plain_file(path / LOCK) and (path / LOCK).stat().st_size == 0


class RunDir:
    def __init__(self, path: Path, resume: bool, overwrite: bool) -> None:
        self.path, self.resume, self.overwrite = Path(path), resume, overwrite
        self._fd: int | None = None

    def _check(self) -> None:
        """Refuse (one line, nothing touched) a folder that is not ours, or one where a path we write is
        something else now (a user's folder or link named like our file)."""
        if self.path.exists() and not self.path.is_dir():
            raise MusesynthError(f"run folder {self.path} is a file; {HINT}")
        if self.path.is_dir() and has_entries(self.path):
            check_owned(self.path, "run", legacy_run, "a musesynth run folder", HINT)
        for name in (*OUTPUTS, LOCK, MARKER, TENSORBOARD):
            p = self.path / name
            ours = p.is_dir() and not p.is_symlink() if name == TENSORBOARD else is_plain_file(p)
            if os.path.lexists(p) and not ours:
                raise MusesynthError(f"run folder {self.path} holds {name} as a {describe(p)}, not what musesynth "
                                     f"writes there; move it or {HINT} (nothing was changed)")

    def __enter__(self) -> RunDir:
        self._check()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise MusesynthError(f"cannot write the run folder {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise MusesynthError(f"another training is using {self.path} right now; wait for it or choose "
                                 f"another --run-name") from None
        try:
            self._check()  # again, under the lock: the folder may have changed since
            if marker_kind(self.path) != "run":
                write_marker(self.path, "run")
        except BaseException:
            self.__exit__()
            raise
        self._clear_temp_files()
        done = [n for n in ("best.pt", "last.pt") if (self.path / n).exists()]
        if done and not self.resume:
            if not self.overwrite:
                self.__exit__()
                raise MusesynthError(f"{self.path} already holds a trained run ({', '.join(done)}); use --resume "
                                     f"to continue it, another --run-name, or --overwrite to replace it")
            for name in OUTPUTS:  # plain files of ours, checked above
                (self.path / name).unlink(missing_ok=True)
        return self

    def _clear_temp_files(self) -> None:
        """Remove what an atomic write killed mid-way left (``.best.pt.XXXX.tmp``), in our own folder, and
        only plain files: a folder or link of that name is left alone."""
        for name in OUTPUTS:
            for tmp in self.path.glob(f".{name}.*.tmp"):
                if is_plain_file(tmp):
                    tmp.unlink(missing_ok=True)

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
