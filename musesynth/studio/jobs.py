"""Generation and infill jobs: one worker thread runs them in order (two at once would only halve each one's
speed on a CPU), the page polls a job's state, progress and result. Every failure becomes a one-line message."""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.infill import InfillOptions, run_infill
from musesynth.generate.request import cli_flag
from musesynth.generate.run import GenerateOptions, run_generate
from musesynth.generate.sampling import Sampling
from musesynth.tokenize.meter import parse_key

MAX_LENGTH = 4096  # new tokens per request: minutes on a CPU already
KINDS = {"mid": "midi", "wav": "wav", "png": "png"}


@dataclass
class Job:
    id: int
    options: GenerateOptions | InfillOptions  # a continuation, or bars of the primer rewritten
    label: dict[str, Any]
    state: str = "queued"  # queued -> running -> done | error
    progress: float = 0.0
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)

    def file(self, kind: str) -> Path | None:
        """The job's MIDI, WAV or PNG, when it was written."""
        if self.result is None or kind not in KINDS or not self.result.get(KINDS[kind]):
            return None
        return Path(self.result[KINDS[kind]])

    def public(self) -> dict[str, Any]:
        """What the page sees: no server paths, only names and URLs."""
        out: dict[str, Any] = {"id": self.id, "state": self.state, "progress": round(self.progress, 3),
                               "error": self.error, "request": self.label}
        if self.result is not None:
            out["result"] = self._result(self.result)
        return out

    def _result(self, r: dict[str, Any]) -> dict[str, Any]:
        out = {"name": Path(r["midi"]).name, "notes": r["notes"], "seconds": r["seconds"],
               "generation_seconds": r["generation_seconds"], "wav_skipped": r.get("wav_skipped"),
               "files": {k: f"/files/{self.id}/{k}" for k in KINDS if self.file(k) is not None}}
        if "bars" in r:  # an infill (run_infill's sidecar)
            out.update(bars=r["bars"], new_notes=r["new_notes"], fill_complete=r["fill_complete"])
            if not r["fill_complete"]:
                out["warning"] = "the fill ran out of tokens; its last bars were left empty"
            elif r["new_notes"] == 0:
                out["warning"] = "the rewritten bars have no notes (try a higher top-k or temperature)"
            return out
        out.update(key=r.get("key"), composer=r.get("composer"), tempo=r.get("tempo"),
                   primer_tokens=r["primer_tokens"], generated_tokens=r["generated_tokens"])
        if r["notes"] == 0:
            out["warning"] = "this piece has no notes (try a higher top-k or temperature)"
        return out


def number(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """A number field of a request (empty: ``default``), or a one-line error naming the field."""
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise MusesynthError(f"{name.replace('_', ' ')} must be a {'whole ' if kind is int else ''}number "
                             f"(got {value!r})") from None
    if kind is int and number != float(value):
        raise MusesynthError(f"{name.replace('_', ' ')} must be a whole number (got {value!r})")
    if isinstance(number, float) and not math.isfinite(number):
        raise MusesynthError(f"{name.replace('_', ' ')} must be a finite number (got {value!r})")
    return number


def options_from_request(body: dict[str, Any], base: GenerateOptions) -> GenerateOptions:
    """The page's numbers as GenerateOptions, checked now so a bad value is refused before it is queued."""
    d = GenerateOptions()
    length = number(body, "length", int, d.length)
    if not 1 <= length <= MAX_LENGTH:
        raise MusesynthError(f"length must be between 1 and {MAX_LENGTH} tokens (got {length})")
    seconds = number(body, "primer_seconds", float, None)
    key = str(body.get("key") or "").strip() or None
    if key is not None:
        parse_key(key)  # its spelling now; whether the model knows keys, when the job loads it
    composer = str(body.get("composer") or "").strip() or None  # None: drawn from the training corpus' shares
    opt = replace(base, length=length, primer_seconds=seconds or None, seed=number(body, "seed", int, 0),
                  key=key, composer=composer, tempo=number(body, "tempo", float, None),
                  sampling=sampling_from_request(body))
    opt.validate()
    return opt


def sampling_from_request(body: dict[str, Any]) -> Sampling:
    """The sampling dials (``Sampling``'s fields, by name), checked by ``Sampling.validate`` (the CLI's messages)."""
    values = {name: number(body, name, int if dial.whole else float, default)
              for name, (default, dial) in Sampling.dials().items()}
    try:
        return Sampling(**values).validate()
    except BadRequest as exc:
        raise exc.named(cli_flag) from None


class JobQueue:
    """Jobs by id, run one after another by a daemon thread."""

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._todo: queue.Queue[Job] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="musesynth-studio-jobs", daemon=True)
        self._worker.start()

    def submit(self, options: GenerateOptions | InfillOptions, label: dict[str, Any]) -> Job:
        with self._lock:
            job = Job(len(self.jobs) + 1, options, label)
            self.jobs[job.id] = job
        self._todo.put(job)
        return job

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self.jobs.values())

    def _work(self) -> None:
        while True:
            self.run(self._todo.get())

    @staticmethod
    def run(job: Job) -> None:
        def progress(share: float) -> None:
            job.progress = share

        job.state = "running"
        try:
            results = (run_infill(job.options, progress) if isinstance(job.options, InfillOptions)
                       else run_generate(job.options, log=lambda _: None, progress=progress))
            job.result, job.progress, job.state = results[0], 1.0, "done"
        except MusesynthError as exc:
            job.error, job.state = str(exc), "error"
        except OSError as exc:  # a full disk, a folder removed while the studio runs
            job.error, job.state = f"cannot write the piece: {exc.strerror or exc}", "error"
        except Exception as exc:  # a bug: one line in the page, the traceback on the studio's terminal
            traceback.print_exc(file=sys.stderr)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            job.error, job.state = f"internal error: {type(exc).__name__}: {first}"[:300], "error"
