"""Primer(s) + checkpoint -> new pieces on disk, each as .mid, .wav, .png and a .json sidecar."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.artifacts.load import CheckpointMeta, load_model
from musesynth.artifacts.shipped import DEFAULT_MODEL, is_shipped
from musesynth.atomic import atomic_write, atomic_write_json
from musesynth.data.files import find_midi_files
from musesynth.data.key_frame import KeyFrame
from musesynth.device import pick_device
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.generate.controls import HeaderTempo, apply_controls, check_controls
from musesynth.generate.key_guide import row_key
from musesynth.generate.keys import parse_requested_key, primer_rows
from musesynth.generate.midi_out import daw_ready
from musesynth.generate.primer import clip_seconds
from musesynth.generate.render import piano_roll, render_wav
from musesynth.generate.sampling import Sampling, ending_ramp, generate
from musesynth.outputs import check_writable_dir, piece_name
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import load_score

OUTPUT_SUFFIXES = (".mid", ".wav", ".png", ".json")


@dataclass
class GenerateOptions:
    checkpoint: str | None = None  # None: the model shipped in the package
    primer: str | None = None
    primer_tokens: int | None = None
    primer_seconds: float | None = None
    length: int = 512
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = 0
    num_samples: int = 1
    out_dir: str = "generated"
    wav: bool = True
    png: bool = True
    soundfont: str | None = None
    device: str = "auto"
    no_cache: bool = False
    free_repeats: bool = False  # let the model write a repeated bar itself instead of copying it
    overwrite: bool = False
    key: str | None = None  # e.g. "D major": the key to write in (keyed encodings); None: primer's or corpus'
    composer: str | None = None  # e.g. "palestrina": a composer the checkpoint's vocabulary knows
    tempo: float | None = None  # BPM: the header tempo (meter encoding)

    def validate(self) -> None:
        if self.length < 1:
            raise MusesynthError(f"--length must be at least 1 (got {self.length})")
        check_sample_options(self)
        if self.primer_tokens is not None and self.primer_tokens < 1:
            raise MusesynthError(f"--primer-tokens must be at least 1 (got {self.primer_tokens})")
        if self.primer_seconds is not None and not (self.primer_seconds > 0 and np.isfinite(self.primer_seconds)):
            raise MusesynthError(f"--primer-seconds must be positive (got {self.primer_seconds})")


def check_seed(seed: int) -> None:
    """Seeds also seed NumPy draws (keys, composers from the corpus' shares), which take no negatives."""
    if not 0 <= seed < 2**63:
        raise MusesynthError(f"--seed must be a whole number, 0 or more (got {seed})")


def check_sample_options(opt: Any) -> None:
    """The options `generate` and `infill` share: samples, seed, sampling dials, soundfont."""
    if opt.num_samples < 1:
        raise MusesynthError(f"--num-samples must be at least 1 (got {opt.num_samples})")
    check_seed(opt.seed)
    opt.sampling.validate()
    if opt.soundfont is not None and opt.wav:
        check_soundfont(opt.soundfont)


def checkpoint_or_shipped(checkpoint: str | None) -> str:
    if checkpoint is not None:
        return checkpoint
    if not is_shipped(DEFAULT_MODEL):
        raise MusesynthError(f"no -c given and the shipped model is missing from {DEFAULT_MODEL} (run `make "
                             f"pretrained`, or pass -c RUN_FOLDER)")
    return str(DEFAULT_MODEL)


def check_soundfont(path: str) -> None:
    """An explicit --soundfont must be a readable SoundFont 2 file: never silently replaced by another."""
    p = Path(path)
    if not p.is_file():
        raise MusesynthError(f"soundfont not found: {p}")
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise MusesynthError(f"cannot read soundfont {p}: {exc.strerror}") from None
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise MusesynthError(f"not a SoundFont 2 (.sf2) file: {p}")


def primer_ids(enc: Encoding, path: Path | None, tokens: int | None, seconds: float | None,
               seq_len: int) -> np.ndarray:
    """Token ids of the primer: BOS alone without a file; else the file's opening, cut by seconds or tokens."""
    if path is None:
        return np.array([enc.bos_id])
    try:
        score = load_score(path)
        if seconds is not None:
            score = clip_seconds(score, seconds)
        ids = enc.encode(score)
    except MidiReadError as exc:
        raise MidiReadError(f"cannot use primer {os.fsdecode(path)!r}: {exc}") from None
    except Exception as exc:  # a library bug on an odd file: this primer is skipped, like in `musesynth data`
        raise MidiReadError(f"cannot use primer {os.fsdecode(path)!r}: failed to tokenize: "
                            f"{type(exc).__name__}: {exc}") from None
    ids = ids[:-1]  # drop EOS: the model continues the piece
    if tokens is not None:
        ids = ids[:tokens]
    elif seconds is None:
        ids = ids[: min(seq_len // 2, ids.size)]
    return ids


def check_fits(rows: np.ndarray, seq_len: int, primer_tokens: int | None = None) -> np.ndarray:
    """The primer rows must fit the model's context; ``primer_tokens``: the primer's own length, before the
    key / composer tokens the controls may have added (the advice counts them)."""
    if rows.shape[-1] > seq_len:
        added = rows.shape[-1] - primer_tokens if primer_tokens is not None else 0
        raise MusesynthError(
            f"primer is {rows.shape[-1]} tokens, longer than the model context of {seq_len} tokens; "
            f"use --primer-tokens {max(seq_len - added, 1)} or fewer (or fewer --primer-seconds)"
        )
    return rows


def _primers(spec: str | None) -> list[Path | None]:
    if spec is None:
        return [None]
    p = Path(spec)
    if p.is_dir():
        files = find_midi_files(p)
        if not files:
            raise MusesynthError(f"no .mid/.midi primer files in {p}")
        return list(files)
    if not p.is_file():
        raise MusesynthError(f"primer not found: {p}")
    return [p]


def run_generate(opt: GenerateOptions, log=print,
                 progress: Callable[[float], None] | None = None) -> list[dict[str, Any]]:
    """Generate for each primer; a bad primer in a folder is reported (``log``) and skipped. ``progress``
    (the studio's progress bar) hears the share of model calls done, in [0, 1]."""
    opt.validate()
    primers = _primers(opt.primer)
    device = pick_device(opt.device)
    out_dir = check_writable_dir(opt.out_dir, "-o/--out-dir")
    model, enc, meta = load_model(checkpoint_or_shipped(opt.checkpoint), device)
    if progress is not None:
        model.register_forward_hook(call_counter(progress, len(primers) * (opt.length + 1)))
    opt.sampling.validate(len(enc.vocab))
    key = parse_requested_key(enc, opt.key)
    tempo_token = check_controls(enc, opt.composer, opt.tempo)
    seq_len = meta.model_config.seq_len
    grammar = enc.grammar()
    results, skipped = [], []
    for primer_path in primers:
        try:
            ids = primer_ids(enc, primer_path, opt.primer_tokens, opt.primer_seconds, seq_len)
        except MidiReadError as exc:
            if len(primers) == 1:
                raise MusesynthError(str(exc)) from None
            skipped.append(str(exc))
            log(f"skipped: {exc}")
            continue
        rows = primer_rows(enc, ids, key, meta.key_prior, opt.num_samples, opt.seed)
        rows = apply_controls(enc, rows, opt.composer, opt.tempo, meta.composer_prior, opt.seed)
        frame = KeyFrame(enc, meta.key_frames)
        rows_in = check_fits(frame.to_model(rows), seq_len, len(ids))
        force = HeaderTempo(enc, tempo_token, rows_in, device) if tempo_token is not None else None
        t0 = time.perf_counter()
        seqs = frame.to_user(generate(model, rows_in, opt.length, opt.num_samples, opt.sampling, grammar, enc.eos_id,
                                      opt.seed, use_cache=not opt.no_cache, seq_len=seq_len,
                                      repeats=None if opt.free_repeats else enc.repeat_spec(), constraint=force,
                                      keys=enc.key_spec()))
        dt = time.perf_counter() - t0
        boundary = enc.end_beats(ids) if primer_path is not None else None
        stem = os.fsdecode(primer_path.stem) if primer_path is not None else "unconditioned"
        for i, seq in enumerate(seqs):
            name = f"{stem}_{meta.family}_seed{opt.seed}_{i}"
            base = piece_name(out_dir, name, OUTPUT_SUFFIXES, opt.overwrite)
            results.append(_write_piece(enc, seq, rows[i], boundary, base, opt, meta, primer_path, dt))
    if not results:
        raise MusesynthError(f"no usable primer in {opt.primer} ({len(skipped)} skipped)")
    return results


def call_counter(progress: Callable[[float], None], total: int) -> Callable[..., None]:
    """A forward hook: decoding makes one model call per sampled token (+1 per primer), so calls count progress
    without touching the sampler."""
    calls = 0

    def hook(*_: Any) -> None:
        nonlocal calls
        calls += 1
        progress(min(calls / total, 1.0))

    return hook


def shown(name: str) -> str:
    """A file name fit to draw: bytes that are not UTF-8 (surrogates in Python) as \\xNN escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _with(base: Path, suffix: str) -> Path:
    """``base`` + suffix; names like bwv1.6_gru_seed0_0 contain dots, so no with_suffix."""
    return base.parent / (base.name + suffix)


def _write_piece(enc: Encoding, seq: np.ndarray, primer: np.ndarray, boundary: float | None, base: Path,
                 opt: GenerateOptions, meta: CheckpointMeta, primer_path: Path | None, dt: float) -> dict[str, Any]:
    # the meter encoding writes the meter it read; others take the primer's
    score: symusic.Score = daw_ready(enc.decode(seq), primer_path if enc.name != "meter" else None, boundary)
    info: dict[str, Any] = {
        "midi": str(_with(base, ".mid")), "wav": None, "png": None, "checkpoint": meta.path, "model": meta.family,
        "primer": os.fsdecode(primer_path) if primer_path else None, "primer_tokens": int(primer.size),
        "generated_tokens": int(seq.size - primer.size), "notes": int(score.note_num()),
        "seconds": round(float(score.to("second").end()) if score.note_num() else 0.0, 2),
        "sampling": {**asdict(opt.sampling), "ending": resolved_ending(opt.sampling, enc, primer), "seed": opt.seed,
                     "num_samples": opt.num_samples, "cache": not opt.no_cache},
        "generation_seconds": round(dt, 3), "encoding": enc.name,
    }
    info.update(enc.header_info(seq))  # key, and with the meter encoding composer, meter and tempo
    title = f"{meta.family} | {shown(primer_path.name) if primer_path else 'no primer'} | " \
            f"T={opt.sampling.temperature} k={opt.sampling.top_k} p={opt.sampling.top_p} seed={opt.seed}"
    return write_outputs(score, base, info, opt.soundfont if opt.wav else False, title if opt.png else None,
                         boundary)


def write_outputs(score: symusic.Score, base: Path, info: dict[str, Any], soundfont: str | None | bool,
                  png_title: str | None, marks: float | tuple[float, float] | None) -> dict[str, Any]:
    """``base``.mid, .wav (``soundfont`` False: none), .png (``png_title`` None: none; ``marks`` where the
    primer ends or the infilled span) and the .json sidecar ``info``, which gains their paths. On an
    OSError (a full disk) what was written is removed: no piece is left without its sidecar."""
    info.update(midi=str(_with(base, ".mid")), wav=None, png=None)
    written: list[Path] = []
    try:
        written.append(atomic_write(_with(base, ".mid"), lambda tmp: Path(tmp).write_bytes(score.dumps_midi())))
        if soundfont is not False:
            why = render_wav(_with(base, ".mid"), _with(base, ".wav"), soundfont)
            if why:
                info["wav_skipped"] = why
            else:
                info["wav"] = str(_with(base, ".wav"))
                written.append(_with(base, ".wav"))
        if png_title is not None:
            written.append(piano_roll(score, _with(base, ".png"), marks, png_title))
            info["png"] = str(_with(base, ".png"))
        atomic_write_json(_with(base, ".json"), info)
    except OSError as exc:
        for p in written:
            p.unlink(missing_ok=True)
        raise MusesynthError(f"cannot write {base.name} in {base.parent}: {exc.strerror or exc}") from None
    return info


def resolved_ending(sampling: Sampling, enc: Encoding, prompt: np.ndarray) -> float:
    """The ending strength the sampler used for this piece: gated where the Decoder gates (a key in its prompt)."""
    spec = enc.key_spec()
    gated = spec is not None and spec.onset is not None and row_key(spec, prompt) is not None
    return ending_ramp(sampling, gated)[0]


def summarize(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['midi']}  ({r['notes']} notes, {r['seconds']} s, {r['generated_tokens']} new tokens)")
        if r["wav"] or r.get("wav_skipped"):  # nothing to say after --no-wav
            lines.append(f"  wav: {r['wav'] or 'not written - ' + r['wav_skipped']}")
        if r["png"]:
            lines.append(f"  png: {r['png']}")
        if r["notes"] == 0:
            lines.append("  warning: this piece has no notes (try a higher --top-k or --temperature)")
        elif r.get("primer") and r["generated_tokens"] <= 1:
            lines.append("  note: the model ended the piece where the primer ends (a whole piece as primer?); "
                         "use less of it: --primer-seconds or --primer-tokens")
    return "\n".join(lines)
