"""Generation and infill jobs: one worker thread runs them in order (two at once would only halve each one's
speed on a CPU), the page polls a job's state, progress and result. Every failure becomes a one-line message.
At most ``MAX_PENDING`` jobs wait at once: a page (or a script) cannot queue hours of work by accident.
Request fields are checked by type as well as range (JSON ``true`` is not a length), each with one line."""

from __future__ import annotations

import math
import queue
import secrets
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from musesynth.errors import BadRequest, MusesynthError
from musesynth.generate.harmonize import HarmonizeOptions, run_harmonize
from musesynth.generate.infill import InfillOptions, run_infill
from musesynth.generate.request import cli_flag
from musesynth.generate.run import GenerateOptions, run_generate
from musesynth.generate.sampling import Sampling
from musesynth.tokenize.meter import parse_key

MAX_LENGTH = 4096  # new tokens per request: minutes on a CPU already
MAX_PENDING = 8  # jobs waiting behind the running one; more is refused (HTTP 429) until some are done
MAX_SEED = 2**31 - 1  # seeds the page draws or accepts: any of them can be typed back in
MAX_PRIMER_SECONDS = 3600.0  # a primer's opening is seconds long; past an hour a number is a typo
KINDS = {"mid": "midi", "wav": "wav", "png": "png"}


@dataclass
class Job:
    id: int
    options: GenerateOptions | InfillOptions | HarmonizeOptions  # a continuation, bars rewritten, a harmonisation
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
        if "melody_voice" in r:  # a harmonisation (run_harmonize's sidecar)
            out.update(melody_notes=r["melody_notes"], voices=[r["melody_voice"], *r["voices"]], key=r.get("key"),
                       remarks=harmonize_remarks(r))
            if not r["complete"]:
                out["warning"] = "the token budget ran out before the end: the last bars have only the melody"
            elif r.get("empty_voices"):
                out["warning"] = f"the model wrote no notes for {', '.join(r['empty_voices'])}"
            return out
        if "bars" in r:  # an infill (run_infill's sidecar)
            out.update(bars=r["bars"], new_notes=r["new_notes"], fill_complete=r["fill_complete"],
                       parts=r.get("parts") or [],
                       remarks=[f"kept as given, not heard by the model: {', '.join(r['unseen_tracks'])}"]
                       if r.get("unseen_tracks") else [])
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


def harmonize_remarks(r: dict[str, Any]) -> list[str]:
    """What the card says was done to the melody (harmonize's summary lines, short): moved, top line, grid, legato."""
    out = []
    if r.get("melody_shift"):
        k = r["melody_shift"]
        out.append(f"voices written {abs(k)} semitones {'higher' if k > 0 else 'lower'} and moved back with the "
                   f"melody (outside the {r['melody_voice'].lower()}'s range)")
    if r.get("melody_top_line"):
        t = r["melody_top_line"]
        out.append(f"top line: {t['dropped']} notes dropped, {t['cut']} cut")
    if r.get("melody_off_grid"):
        out.append(f"{r['melody_off_grid']} melody notes moved onto the grid")
    if r.get("melody_legato_cut"):
        out.append(f"{r['melody_legato_cut']} legato notes cut where the next starts")
    return out


class FieldError(MusesynthError):
    """A request field with a wrong type or value: ``field`` tells the page which control to mark."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class QueueFull(MusesynthError):
    """``MAX_PENDING`` jobs wait already (the server answers 429)."""


def number(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """A number field of a request (empty: ``default``), or a one-line error naming the field. The page sends
    numbers as JSON numbers or as the text of an input box; anything else (true, a list) is refused."""
    value = body.get(name)
    if value is None or value == "":
        return default
    what = f"{name.replace('_', ' ')} must be a {'whole ' if kind is int else ''}number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FieldError(name, f"{what} (got {json_type(value)})")
    try:
        number = kind(value) if not isinstance(value, str) else kind(float(value) if kind is int else value)
    except (TypeError, ValueError, OverflowError):
        raise FieldError(name, f"{what} (got {value!r})") from None
    if kind is int and not isinstance(value, int) and number != float(value):
        raise FieldError(name, f"{name.replace('_', ' ')} must be a whole number (got {value!r})")
    if isinstance(number, float) and not math.isfinite(number):
        raise FieldError(name, f"{name.replace('_', ' ')} must be a finite number (got {value!r})")
    return number


def text(body: dict[str, Any], name: str) -> str | None:
    """A text field of a request (empty or absent: None), or a one-line error naming the field."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(name, f"{name.replace('_', ' ')} must be text (got {json_type(value)})")
    return value.strip() or None


def json_type(value: Any) -> str:
    """How a JSON value is called in an error line: true, a list, an object, a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def seed_from_request(body: dict[str, Any]) -> int:
    """The typed seed, or a fresh one: each Generate is a new piece, and its card shows the seed to repeat it."""
    seed = number(body, "seed", int, None)
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if not 0 <= seed <= MAX_SEED:
        raise FieldError("seed", f"seed must be a whole number from 0 to {MAX_SEED} (got {seed})")
    return seed


def options_from_request(body: dict[str, Any], base: GenerateOptions) -> GenerateOptions:
    """The page's numbers as GenerateOptions, checked now so a bad value is refused before it is queued."""
    d = GenerateOptions()
    length = number(body, "length", int, d.length)
    if not 1 <= length <= MAX_LENGTH:
        shown = length if abs(length) < 10**15 else f"{float(length):g}"
        raise FieldError("length", f"length must be between 1 and {MAX_LENGTH} tokens (got {shown})")
    seconds = number(body, "primer_seconds", float, None)
    if seconds is not None and not 0 <= seconds <= MAX_PRIMER_SECONDS:
        raise FieldError("primer_seconds", f"primer seconds must be from 0 (half the context) to "
                         f"{MAX_PRIMER_SECONDS:g} (got {seconds:g})")
    key = text(body, "key")
    if key is not None:
        try:
            parse_key(key)  # its spelling now; whether the model knows keys, when the job loads it
        except MusesynthError as exc:
            raise FieldError("key", str(exc)) from None
    composer = text(body, "composer")  # None: drawn from the training corpus' shares
    seconds = (seconds or None) if base.primer else None  # the page keeps its seconds box when no primer is chosen
    opt = replace(base, length=length, primer_seconds=seconds, seed=seed_from_request(body),
                  key=key, composer=composer, tempo=number(body, "tempo", float, None),
                  sampling=sampling_from_request(body), particles=number(body, "particles", int, d.particles))
    opt.validate()
    return opt


def check_sampling(sampling: Sampling, vocab_size: int) -> None:
    """The dials against the chosen model (top-k at most its vocabulary), worded as the page's other dial errors."""
    try:
        sampling.validate(vocab_size)
    except BadRequest as exc:
        raise exc.named(cli_flag) from None


def sampling_from_request(body: dict[str, Any], base: Sampling | None = None) -> Sampling:
    """The sampling dials (``Sampling``'s fields, by name), checked by ``Sampling.validate`` (the CLI's messages);
    a dial left out is ``base``'s (a mode's own defaults: harmonize's temperature), else ``Sampling``'s."""
    values = {name: number(body, name, int if dial.whole else float, default if base is None else getattr(base, name))
              for name, (default, dial) in Sampling.dials().items()}
    try:
        return Sampling(**values).validate()
    except BadRequest as exc:
        raise exc.named(cli_flag) from None


PAGE_FIELDS = {"piece": "primer", "melody": "melody", "parts": "voices", "voices": "voices",
               "part": "the melody's track", "bars": "bars"}


def page_name(field: str) -> str:
    """How a job's error names a field on the page: its own boxes (a primer, voices, bars), else the CLI's flag
    (as the page's sampling-dial errors do)."""
    return PAGE_FIELDS.get(field) or cli_flag(field)


def without_paths(message: str, options: GenerateOptions | InfillOptions | HarmonizeOptions) -> str:
    """A job's error as the page may show it: the studio's folders become the file names the page knows, and the
    option a refusal suggests is the page's box."""
    for path in (getattr(options, "primer", None), getattr(options, "input", None), getattr(options, "melody", None)):
        if path:
            message = message.replace(str(path), Path(path).name)
    message = message.replace(str(Path(options.out_dir)) + "/", "").replace(str(options.out_dir), "the studio's folder")
    message = message.replace("--top-line", "the box 'top line'")
    return one_line(message)


def one_line(message: str) -> str:
    """The first line of a message (a library's multi-line text), as the page shows errors: one line each."""
    lines = message.strip().splitlines()
    return lines[0] if lines else message


class JobQueue:
    """Jobs by id, run one after another by a daemon thread."""

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._todo: queue.Queue[Job] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="musesynth-studio-jobs", daemon=True)
        self._worker.start()

    def submit(self, options: GenerateOptions | InfillOptions | HarmonizeOptions, label: dict[str, Any]) -> Job:
        with self._lock:
            waiting = sum(j.state == "queued" for j in self.jobs.values())
            if waiting >= MAX_PENDING:
                raise QueueFull(f"{waiting} jobs are waiting already; wait for one to finish, then press Generate "
                                f"again")
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
            o = job.options
            results = (run_infill(o, progress, page_name) if isinstance(o, InfillOptions)
                       else run_harmonize(o, progress, page_name) if isinstance(o, HarmonizeOptions)
                       else run_generate(o, log=lambda _: None, progress=progress))
            job.result, job.progress, job.state = results[0], 1.0, "done"
        except MusesynthError as exc:
            job.error, job.state = without_paths(str(exc), job.options), "error"
        except OSError as exc:  # a full disk, a folder removed while the studio runs
            job.error, job.state = f"cannot write the piece: {exc.strerror or exc}", "error"
        except Exception as exc:  # a bug: one line in the page, the traceback on the studio's terminal
            traceback.print_exc(file=sys.stderr)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            job.error, job.state = f"internal error: {type(exc).__name__}: {first}"[:300], "error"
