"""Primer(s) + checkpoint -> new pieces on disk, each as .mid, .wav, .png and a .json sidecar."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musesynth.atomic import atomic_write, atomic_write_json
from musesynth.data.build import find_midi_files
from musesynth.errors import MidiReadError, MusesynthError
from musesynth.generate.render import piano_roll, render_wav
from musesynth.generate.sampling import Sampling, generate
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import load_score
from musesynth.training.checkpoint import load_model
from musesynth.training.loop import pick_device


@dataclass
class GenerateOptions:
    checkpoint: str
    primer: str | None = None
    primer_tokens: int | None = None
    primer_seconds: float | None = None
    length: int = 512
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    num_samples: int = 1
    out_dir: str = "generated"
    wav: bool = True
    png: bool = True
    soundfont: str | None = None
    device: str = "auto"
    no_cache: bool = False


def primer_ids(enc: Encoding, path: Path | None, tokens: int | None, seconds: float | None,
               context: int) -> np.ndarray:
    """Token ids of the primer: BOS alone without a file; else the file's opening, cut by seconds or tokens."""
    if path is None:
        return np.array([enc.bos_id])
    try:
        score = load_score(path)
        if seconds is not None:
            if seconds <= 0:
                raise MusesynthError("--primer-seconds must be positive")
            score = score.to("second").clip(0, seconds).to("tick")
        ids = enc.encode(score)
    except MidiReadError as exc:
        raise MusesynthError(f"cannot use primer {path}: {exc}") from None
    ids = ids[:-1]  # drop EOS: the model continues the piece
    if tokens is not None:
        if tokens < 1:
            raise MusesynthError("--primer-tokens must be at least 1")
        ids = ids[:tokens]
    elif seconds is None:
        ids = ids[: min(context // 2, ids.size)]
    if ids.size > context:
        raise MusesynthError(
            f"primer is {ids.size} tokens, longer than the model context of {context} tokens; "
            f"use --primer-tokens {context} or fewer (or fewer --primer-seconds)"
        )
    return ids


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


def run_generate(opt: GenerateOptions) -> list[dict[str, Any]]:
    if opt.length < 1:
        raise MusesynthError("--length must be at least 1")
    if opt.num_samples < 1:
        raise MusesynthError("--num-samples must be at least 1")
    if opt.temperature <= 0:
        raise MusesynthError("--temperature must be positive")
    if not 0 < opt.top_p <= 1:
        raise MusesynthError("--top-p must be in (0, 1]")
    primers = _primers(opt.primer)
    device = pick_device(opt.device)
    model, enc, meta = load_model(opt.checkpoint, device)
    cfg = meta["model_config"]
    context = int(cfg["context"])
    grammar = enc.grammar()
    out_dir = Path(opt.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sampling = Sampling(opt.temperature, opt.top_k, opt.top_p)
    results = []
    for primer_path in primers:
        ids = primer_ids(enc, primer_path, opt.primer_tokens, opt.primer_seconds, context)
        t0 = time.perf_counter()
        seqs = generate(model, ids, opt.length, opt.num_samples, sampling, grammar, enc.eos_id, opt.seed,
                        use_cache=not opt.no_cache, context=context)
        dt = time.perf_counter() - t0
        boundary = enc.end_beats(ids) if primer_path is not None else None
        stem = primer_path.stem if primer_path is not None else "unconditioned"
        for i, seq in enumerate(seqs):
            name = f"{stem}_{cfg['family']}_seed{opt.seed}_{i}"
            results.append(_write_piece(enc, seq, ids, boundary, out_dir / name, opt, meta, primer_path, dt))
    return results


def _with(base: Path, suffix: str) -> Path:
    """``base`` + suffix; names like bwv1.6_gru_seed0_0 contain dots, so no with_suffix."""
    return base.parent / (base.name + suffix)


def _write_piece(enc: Encoding, seq: np.ndarray, primer: np.ndarray, boundary: float | None, base: Path,
                 opt: GenerateOptions, meta: dict[str, Any], primer_path: Path | None, dt: float) -> dict[str, Any]:
    score: symusic.Score = enc.decode(seq)
    mid = _with(base, ".mid")
    atomic_write(mid, lambda tmp: score.dump_midi(tmp))
    seconds = float(score.to("second").end()) if score.note_num() else 0.0
    info: dict[str, Any] = {
        "midi": str(mid), "wav": None, "png": None,
        "checkpoint": meta["path"], "model": meta["model_config"]["family"],
        "primer": str(primer_path) if primer_path else None, "primer_tokens": int(primer.size),
        "generated_tokens": int(seq.size - primer.size), "notes": int(score.note_num()),
        "seconds": round(seconds, 2), "sampling": {"temperature": opt.temperature, "top_k": opt.top_k,
                                                   "top_p": opt.top_p, "seed": opt.seed,
                                                   "num_samples": opt.num_samples, "cache": not opt.no_cache},
        "generation_seconds": round(dt, 3), "encoding": enc.name,
    }
    if opt.wav:
        wav = _with(base, ".wav")
        why = render_wav(mid, wav, opt.soundfont)
        info["wav"] = None if why else str(wav)
        if why:
            info["wav_skipped"] = why
    if opt.png:
        png = _with(base, ".png")
        title = f"{info['model']} | {primer_path.name if primer_path else 'no primer'} | T={opt.temperature} " \
                f"k={opt.top_k} p={opt.top_p} seed={opt.seed}"
        piano_roll(score, png, boundary, title)
        info["png"] = str(png)
    atomic_write_json(_with(base, ".json"), info)
    return info


def summarize(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['midi']}  ({r['notes']} notes, {r['seconds']} s, {r['generated_tokens']} new tokens)")
        lines.append(f"  wav: {r['wav'] or 'not written - ' + r.get('wav_skipped', '')}")
        if r["png"]:
            lines.append(f"  png: {r['png']}")
    return "\n".join(lines)

