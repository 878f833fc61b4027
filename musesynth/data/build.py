"""MIDI folder -> token dataset (layout in ``data/dataset.py``), written to a temp folder, then renamed
into place, so a killed run never leaves half a dataset.

Files are tokenized in worker processes, one file at a time, each under a budget: ``FILE_SECONDS`` of
wall time and ``FILE_MEMORY`` of address space a worker may add (besides the encodings' token budget,
``tokenize.base.check_token_budget``). A file over budget, or one whose worker dies (killed, out of
memory, a crash in the parser), costs that file alone: it is reported with its reason, the worker is
replaced, and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
import time
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from musesynth.atomic import atomic_replace_dir, atomic_write_json
from musesynth.data.composers import composer_of_files
from musesynth.data.dataset import DATASET_FILES, MANIFEST, Manifest
from musesynth.data.files import find_midi_files as find_midi_files  # re-exported: callers import it from here
from musesynth.data.files import scan_midi
from musesynth.data.split import SPLITS, assign_splits
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.outputs import check_not_over_input, check_writable_dir, is_inside, refuse_read_only
from musesynth.ownership import (
    MARKER,
    check_owned,
    first_foreign,
    has_entries,
    is_plain_file,
    read_json,
    refuse_foreign,
    replacing,
    resolve_target,
    write_marker,
)
from musesynth.tokenize import get_encoding
from musesynth.tokenize.base import Encoding

FILE_SECONDS = 30.0  # wall time one file may take (typical files take milliseconds)
FILE_MEMORY = 2 * 2**30  # address space a worker may add while reading a file
_GRACE = 5.0  # after the budget, the parent kills a worker that did not stop by itself
_DEPTH = 2  # files sent to a worker ahead: it starts the next while the parent reads its answer

Result = tuple[np.ndarray | None, str | None]


class _TimeUp(BaseException):
    """Raised by SIGALRM inside a worker; a BaseException so no ``except Exception`` swallows it."""


def _encode_job(path: str, enc: Encoding, memory: int = FILE_MEMORY) -> Result:
    try:
        ids = enc.encode_file(path)
    except MidiReadError as exc:
        return None, str(exc)
    except MemoryError:
        return None, f"needed more than {memory / 2**30:g} GiB of memory"
    except Exception as exc:  # a library bug on an odd file must not stop the whole run
        return None, f"failed to tokenize: {type(exc).__name__}: {exc}"
    return ids.astype(np.uint16), None


def _limit_memory(extra: int) -> None:
    """Let this process grow by at most ``extra`` bytes of address space (Linux; elsewhere no limit)."""
    try:
        with open("/proc/self/statm") as fh:
            now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limits = [now + extra] + [x for x in (soft, hard) if x != resource.RLIM_INFINITY]
        resource.setrlimit(resource.RLIMIT_AS, (min(limits), hard))  # never above a limit already set
    except (OSError, ValueError, AttributeError):
        pass


def _worker_main(conn, enc: Encoding, seconds: float, memory: int) -> None:
    """Read paths from ``conn`` until None; answer each with (ids or None, reason or None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops its workers

    def time_up(signum, frame):
        raise _TimeUp

    signal.signal(signal.SIGALRM, time_up)
    _limit_memory(memory)
    parent = os.getppid()
    while True:
        try:
            while not conn.poll(1.0):
                if os.getppid() != parent:  # the parent was killed: no one will read the answer
                    return
            path = conn.recv()
        except (EOFError, OSError):
            return
        if path is None:
            return
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            result = _encode_job(path, enc, memory)
            signal.setitimer(signal.ITIMER_REAL, 0)
        except _TimeUp:
            result = (None, f"took longer than {seconds:g} s")
        try:
            conn.send(result)
        except OSError:
            return


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = ", perhaps out of memory" if name == "SIGKILL" else ""
        return f"worker died while reading it (killed by {name}{hint})"
    return f"worker died while reading it (exit code {exitcode})"


class _Worker:
    """One tokenizer process and the files sent to it, in order: it reads ``jobs[0]`` (since ``since``),
    the others wait in its pipe, so it never idles between files."""

    def __init__(self, ctx, enc: Encoding, seconds: float, memory: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, enc, seconds, memory), daemon=True)
        self.proc.start()
        child.close()
        self.jobs: deque[int] = deque()
        self.since = 0.0

    def give(self, job: int, path: str) -> bool:
        try:
            self.conn.send(path)
        except OSError:  # the process is gone
            return False
        if not self.jobs:
            self.since = time.monotonic()
        self.jobs.append(job)
        return True

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _context():
    """fork where the platform has it: workers start at once and share the loaded libraries."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def tokenize_files(files: list[Path], enc: Encoding, workers: int | None, quiet: bool,
                   seconds: float = FILE_SECONDS, memory: int = FILE_MEMORY) -> list[Result]:
    """(ids or None, reason or None) per file, in the order given, on ``workers`` processes (default:
    all cores). A worker reads its files one at a time and answers in order, so the parent always knows
    which file a worker was reading: one that dies or runs out of time costs exactly that file; it is
    replaced, and the files queued behind it go to the next worker."""
    paths = [str(p) for p in files]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(paths)))
    results: list[Result | None] = [None] * len(paths)
    todo = deque(range(len(paths)))
    ctx = _context()
    pool: list[_Worker] = []
    lost = 0  # workers found dead with no file in hand (never expected; bounded so a broken setup ends)
    bar = tqdm(total=len(paths), desc="tokenize", unit="file", disable=quiet)

    def finish(job: int, result: Result) -> None:
        results[job] = result
        bar.update()

    def retire(w: _Worker, reason: str) -> None:
        """The worker failed on its current file: report it, requeue the files behind it, replace it."""
        finish(w.jobs.popleft(), (None, reason))
        todo.extendleft(reversed(w.jobs))
        w.stop(kill=True)
        pool.remove(w)

    try:
        while todo or any(w.jobs for w in pool):
            while todo and len(pool) < n_workers:
                pool.append(_Worker(ctx, enc, seconds, memory))
            for w in list(pool):
                while todo and len(w.jobs) < _DEPTH:
                    i = todo.popleft()
                    if not w.give(i, paths[i]):
                        todo.appendleft(i)  # never sent: the death is seen below, or, if idle, here
                        if not w.jobs:
                            lost += 1
                            if lost > n_workers + 10:
                                raise MusesynthError("tokenizer worker processes die as they start")
                            w.stop(kill=True)
                            pool.remove(w)
                        break
            busy = [w for w in pool if w.jobs]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0)
            now = time.monotonic()
            for w in busy:
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        result = w.conn.recv()  # an answer, even from a worker that died just after
                    except (EOFError, OSError):
                        w.proc.join(timeout=5)
                        retire(w, _death(w.proc.exitcode))
                        continue
                    finish(w.jobs.popleft(), result)
                    w.since = now
                elif now - w.since > seconds + _GRACE:
                    retire(w, f"took longer than {seconds:g} s (stopped)")
    finally:
        bar.close()
        for w in pool:
            w.stop(kill=any(r is None for r in results))
    return results  # type: ignore[return-value]


def _write_splits(tmp: Path, used: dict[str, np.ndarray], split: dict[str, str],
                  extra: list[np.ndarray] = ()) -> dict[str, dict[str, int]]:
    """Each split's pieces in path order; ``extra`` (the --train-only files) follow the corpus's own in train."""
    totals: dict[str, dict[str, int]] = {}
    for s in SPLITS:
        names = [r for r in sorted(used) if split[r] == s]
        arrays = [used[r] for r in names] + (list(extra) if s == "train" else [])
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint16)
        offsets = np.cumsum([0] + [a.size for a in arrays]).astype(np.int64)
        np.save(tmp / f"{s}.npy", tokens)
        np.save(tmp / f"{s}_offsets.npy", offsets)
        totals[s] = {"files": len(arrays), "tokens": int(tokens.size)}
    return totals


def _legacy_dataset(folder: Path) -> bool:
    """A dataset written before the marker existed: our manifest, told by its content, and a vocabulary."""
    d = read_json(folder / MANIFEST)
    return (isinstance(d, dict) and {"format_version", "vocab_fingerprint", "encoding", "splits"} <= d.keys()
            and is_plain_file(folder / "vocab.json"))


def _dataset_entry(entry: Path) -> bool:
    """A path in an earlier dataset that a new one may replace: a file we write there, as a plain file."""
    return entry.name in DATASET_FILES | {MARKER} and is_plain_file(entry)


def check_dataset_target(out_dir: Path, midi_dir: Path, train_only: list[Path] = ()) -> None:
    """The dataset folder may be new or an earlier dataset of ours (replaced whole); anything else is the
    user's and refused in one line naming it. Ours: our marker, or (made before the marker) our manifest by
    its content; and every path in it must be a plain file of a name we write, so a user's folder or link
    that took the place of one of our files is never deleted."""
    for inp in (midi_dir, *train_only):
        check_not_over_input(out_dir, inp, "dataset folder")
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise MusesynthError(f"dataset folder {out_dir} is a file; choose a new folder name")
    if out_dir.is_dir() and has_entries(out_dir):
        check_owned(out_dir, "dataset", _legacy_dataset, "a musesynth dataset", "choose a new folder")
        extra = first_foreign(out_dir, _dataset_entry)
        if extra is not None:
            raise refuse_foreign(extra, "dataset folder")
    refuse_read_only(out_dir, "dataset folder")  # an empty one is swapped for the new dataset
    check_writable_dir(out_dir.parent, "dataset parent folder")


def _train_only_dirs(midi_dir: Path, dirs: list[str | Path], composers: str | None) -> list[Path]:
    """The --train-only folders, each a folder apart from the corpus and from the others (a file in two
    folders would be read twice, or a held-out piece trained on)."""
    if dirs and composers:
        raise MusesynthError("--composers and --train-only do not go together (the extra files have no composer "
                             "in the list); build without one of them")
    out: list[Path] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise MusesynthError(f"--train-only folder not found: {d}" if not d.exists() else f"--train-only "
                                 f"is not a folder: {d}")
        for other, what in [(midi_dir, "the MIDI folder")] + [(o, "another --train-only folder") for o in out]:
            if is_inside(d, other) or is_inside(other, d):
                raise MusesynthError(f"--train-only folder {d} overlaps {what} {other}; give folders apart")
        out.append(Path(os.path.abspath(d)))  # whole paths in the report: not the cwd's, not the corpus's names
    return out


def _scan_train_only(dirs: list[Path]) -> tuple[list[tuple[int, Path]], list[tuple[Path, str]]]:
    """The MIDI files of each --train-only folder (with the folder's index), and its names that are no file."""
    files: list[tuple[int, Path]] = []
    odd: list[tuple[Path, str]] = []
    for k, d in enumerate(dirs):
        found, bad = scan_midi(d)
        if not found and not bad:
            raise MusesynthError(f"no .mid/.midi files found in the --train-only folder {d}")
        files += [(k, f) for f in found]
        odd += bad
    return files, odd


def _held_out_copies(extra: list[tuple[int, str, np.ndarray]], used: dict[str, np.ndarray], split: dict[str, str],
                     dirs: list[Path]) -> tuple[list[tuple[int, str, np.ndarray]], list[dict[str, str]]]:
    """An extra file that is a validation or test piece note for note (a copy, a link) would put that piece in
    training: it is skipped, with the piece it copies named."""
    held = {used[r].tobytes(): r for r in sorted(used) if split[r] != "train"}
    keep, copies = [], []
    for k, r, ids in extra:
        twin = held.get(ids.tobytes())
        if twin is None:
            keep.append((k, r, ids))
        else:
            copies.append({"file": str(dirs[k] / r), "reason": f"the same piece as {twin} ({split[twin]} split)"})
    return keep, copies


def first_reasons(skipped: list[dict[str, str]], shown: int = 3) -> str:
    """The first skipped files (by name) with their reasons, and how many more: a one-line error stays one line."""
    first = sorted(skipped, key=lambda s: s["file"])[:shown]
    more = f"; {len(skipped) - len(first)} more" if len(skipped) > len(first) else ""
    return "; ".join(f"{s['file']}: {s['reason']}" for s in first) + more


def build_dataset(
    midi_dir: str | Path,
    out_dir: str | Path,
    encoding: str = "chord",
    params: dict[str, Any] | None = None,
    workers: int | None = None,
    quiet: bool = False,
    composers: str | None = None,
    train_only: list[str | Path] | None = None,
) -> Manifest:
    """Tokenize every MIDI file in parallel, split by file, and write the dataset atomically. ``composers``
    ('folder' or a CSV/JSON file, ``data.composers``) puts each file's composer in its header (meter encoding).
    The files of the ``train_only`` folders (more data, such as the JS Fake Chorales) all go to the training
    split, so validation and test stay the corpus's own pieces, the same ones as without them."""
    t0 = time.perf_counter()
    midi_dir, out_dir = Path(midi_dir), resolve_target(out_dir, "dataset folder")
    extra_dirs = _train_only_dirs(midi_dir, train_only or [], composers)
    check_dataset_target(out_dir, midi_dir, extra_dirs)
    files, odd = scan_midi(midi_dir)
    if not files and not odd:
        raise MusesynthError(f"no .mid/.midi files found in {midi_dir}")
    rels = [p.relative_to(midi_dir).as_posix() for p in files]
    extra_files, extra_odd = _scan_train_only(extra_dirs)
    params = dict(params or {})
    who = composer_of_files(rels, composers) if composers else {}
    if who:
        if encoding != "meter":
            raise MusesynthError("--composers needs --encoding meter (composer tokens sit in its header)")
        params["composers"] = sorted(set(who.values()))
    enc = get_encoding(encoding, **params)
    if len(enc.vocab) > np.iinfo(np.uint16).max:
        raise MusesynthError("vocabulary too large for uint16 storage")
    results = tokenize_files(files + [f for _, f in extra_files], enc, workers, quiet)
    results, extra_results = results[: len(files)], results[len(files):]

    used = {r: ids for r, (ids, err) in zip(rels, results) if ids is not None}
    extra = [(k, f.relative_to(extra_dirs[k]).as_posix(), ids)
             for (k, f), (ids, _) in zip(extra_files, extra_results) if ids is not None]
    ctl = enc.header_controls()
    if who and ctl is None:
        raise MusesynthError(f"--composers needs an encoding with composer tokens (not '{encoding}')")
    used = {r: ctl.set_composer(ids, who[r]).astype(np.uint16) if ctl is not None and r in who else ids
            for r, ids in used.items()}
    skipped = [{"file": r, "reason": err} for r, (ids, err) in zip(rels, results) if ids is None]
    skipped += [{"file": str(f), "reason": err} for (_, f), (ids, err) in zip(extra_files, extra_results)
                if ids is None] + [{"file": str(f), "reason": why} for f, why in extra_odd]
    skipped += [{"file": p.relative_to(midi_dir).as_posix(), "reason": why} for p, why in odd]
    if not used:
        raise MusesynthError(f"no usable MIDI file in {midi_dir} ({len(skipped)} skipped: {first_reasons(skipped)})")

    split = assign_splits(sorted(used))
    extra, copies = _held_out_copies(extra, used, split, extra_dirs)
    skipped = sorted(skipped + copies, key=lambda s: s["file"])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        manifest = Manifest(
            source=str(midi_dir.resolve()), encoding=enc.name, encoding_params=enc.vocab.params,
            vocab_size=len(enc.vocab), vocab_fingerprint=enc.vocab.fingerprint,
            files_found=len(files) + len(extra_files) + len(odd) + len(extra_odd), files_used=len(used) + len(extra),
            files_skipped=len(skipped), splits=_write_splits(tmp, used, split, [ids for _, _, ids in extra]),
            files=[{"file": r, "split": split[r], "tokens": int(used[r].size), **enc.header_info(used[r])}
                   for r in sorted(used)]
            + [{"file": r, "split": "train", "train_only": k, "tokens": int(ids.size), **enc.header_info(ids)}
               for k, r, ids in extra],
            skipped=skipped, seconds=round(time.perf_counter() - t0, 2),
            train_only=[str(d.resolve()) for d in extra_dirs],
        )
        atomic_write_json(tmp / "manifest.json", manifest.to_dict())
        atomic_write_json(tmp / "vocab.json", enc.vocab.to_dict())
        write_marker(tmp, "dataset")
        with replacing(out_dir):
            check_dataset_target(out_dir, midi_dir, extra_dirs)  # again: the folder may have changed while we worked
            atomic_replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
