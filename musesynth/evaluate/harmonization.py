"""The harmonisation benchmark: the soprano of every test-split chorale, harmonised, beside Bach's own lower voices.

For a model of the parts encoding and a parts dataset (`musesynth data --encoding parts`), over the test split:

- **NLL of Bach's alto, tenor and bass given the soprano**: the nats of their NOTE and DUR tokens when the model
  has read the whole soprano first (the melody-first form harmonize prompts with, ``data.melody_first``), per
  such token and per 16th-note frame of the piece; beside the same tokens read without the melody first (the
  plain left-to-right piece), which says how much the model uses the melody it reads.
- **Harmonisations**: each soprano (decoded from the dataset, so it is quantised as the model reads it) is
  harmonised by `musesynth harmonize` (A, T, B; ``seeds`` sampling seeds per melody), and compared with Bach's:
  - the share of melody notes that come out exactly (pitch, onset, duration);
  - the share of beats whose sounding pitch-class set equals Bach's at that beat;
  - the voice-leading report (``evaluate.voice_leading``) of the harmonisations beside Bach's chorales;
  - the most notes sounding at once, the share of time with more than four, and the share of notes of 2 beats
    or more (Bach's held cadence chords);
  - ``evaluate``'s classifier (``evaluate.judge``): harmonisations vs Bach's chorales, and, as the yardstick,
    the model's own unconditioned pieces vs Bach's, at the same number of windows.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import symusic
import torch

from musesynth.artifacts.load import load_model
from musesynth.data.dataset import load_pieces
from musesynth.data.melody_first import melody_prompt
from musesynth.data.split import SPLITS
from musesynth.errors import MusesynthError
from musesynth.evaluate.judge import format_judge, judge_report
from musesynth.evaluate.music_stats import Piece, piece_from_score
from musesynth.evaluate.voice_leading import format_voice_leading, voice_leading_report
from musesynth.generate.harmonize import DEFAULT_PARTICLES, HarmonizeOptions, harmonizations
from musesynth.generate.model import Model
from musesynth.generate.pipeline import generate_pieces
from musesynth.generate.run import GenerateOptions
from musesynth.generate.sampling import Sampling
from musesynth.generate.voices import most_sounding
from musesynth.models.likelihood import next_token_logprobs
from musesynth.tokenize.base import Parts
from musesynth.tokenize.meter import T_DUR, T_NOTE
from musesynth.tokenize.parts import T_CHORD


@dataclass
class BenchOptions:
    checkpoint: str
    dataset: str
    seeds: int = 1  # harmonisations per melody (sampling seeds 0..seeds-1)
    limit: int = 0  # test chorales to use (0: all)
    unconditioned: bool = True  # also the model's own pieces, for the classifier's yardstick
    windows: tuple[int, ...] = (8, 16)
    # the harmonisations' (harmonize's defaults); the free pieces use generate's
    sampling: Sampling = field(default_factory=lambda: HarmonizeOptions().sampling)
    device: str = "cpu"
    particles: int = DEFAULT_PARTICLES  # harmonize --particles: SMC particles per harmonisation (1: masked sampling)
    # the dataset splits whose chorales are harmonised and judged; ("test", "val") gives the classifier the held-out
    # chorales `evaluate` judges with (92 instead of 39: enough for its real-vs-real control to pass)
    splits: tuple[str, ...] = ("test",)


@torch.no_grad()
def lower_voice_nll(model: torch.nn.Module, enc: Parts, piece: np.ndarray, melody_first: bool, seq_len: int,
                    rnn: bool) -> tuple[float, int]:
    """Summed NLL (nats) of the NOTE and DUR tokens of every part but the first (the soprano's) and of the CHORD
    tokens (a chords vocabulary names each onset's harmony before the lower voices write it: its cost is theirs),
    and the count of those NOTE and DUR tokens alone, so encodings with and without CHORD compare per note
    token. The soprano alone is read first or not. A Transformer reads at most its context (the piece is cut)."""
    prefix = melody_prompt(enc, piece, 0) if melody_first else np.zeros(0, np.int64)
    seq = np.r_[prefix, piece]
    if not rnn:
        seq = seq[: seq_len + 1]
    logp = next_token_logprobs(model, seq)
    typ, part = enc.token_type[piece], enc.part_of[piece]
    lower = (typ == T_NOTE) & (part > 0)
    lower |= np.r_[False, lower[:-1] & (typ[1:] == T_DUR)]
    at = prefix.size + np.flatnonzero(lower | (typ == T_CHORD)) - 1
    counted = prefix.size + np.flatnonzero(lower) - 1
    inside = lambda a: a[(a >= 0) & (a < logp.size)]  # noqa: E731
    return float(-logp[inside(at)].sum()), int(inside(counted).size)


def beat_match(a: Piece, b: Piece) -> tuple[int, int]:
    """Beats (whole quarter notes from the first onset to the end of ``b``) where the pitch classes sounding in
    ``a`` equal those in ``b``, and the number of beats with a note sounding in ``b``."""
    if not b.onset.size:
        return 0, 0
    start = float(b.onset.min())
    beats = start + np.arange(int(np.ceil(float((b.onset + b.duration).max()) - start)))

    def sets(p: Piece) -> np.ndarray:
        on = (p.onset[None, :] <= beats[:, None] + 1e-6) & ((p.onset + p.duration)[None, :] > beats[:, None] + 1e-6)
        mask = np.zeros((beats.size, 12), bool)
        r, c = np.nonzero(on)
        mask[r, p.pitch[c] % 12] = True
        return mask

    sa, sb = sets(a), sets(b)
    sounding = sb.any(1)
    return int((np.all(sa == sb, 1) & sounding).sum()), int(sounding.sum())


def soprano_midi(enc: Parts, piece: np.ndarray, path: Path) -> Path:
    """The piece's first part alone as a one-track MIDI file named Soprano (the melody as the model reads it)."""
    q = enc.decode_quantized(piece)
    keep = q["part"] == 0
    score = enc.score_of({**q, "onset": q["onset"][keep], "pitch": q["pitch"][keep],
                          "duration": q["duration"][keep], "part": q["part"][keep], "role": q["role"][:1],
                          "program": q["program"][:1]})
    score.tracks = [t for t in score.tracks if len(t.notes)][:1]
    score.dump_midi(str(path))
    return path


def over_four(p: Piece) -> float:
    """Share of sounding time with more than four notes sounding."""
    if not p.onset.size:
        return 0.0
    t = np.r_[p.onset, p.onset + p.duration]
    d = np.r_[np.ones(p.onset.size), -np.ones(p.onset.size)]
    order = np.lexsort((d, t))
    t, level = t[order], np.cumsum(d[order])
    span = np.diff(t)
    sounding = span[level[:-1] > 0].sum()
    return float(span[level[:-1] > 4].sum() / sounding) if sounding else 0.0


def long_share(pieces: list[Piece]) -> float:
    """Share of notes that last 2 beats or more (the held chords at cadences)."""
    n = sum(p.duration.size for p in pieces)
    return float(sum(int((p.duration >= 2 - 1e-6).sum()) for p in pieces) / n) if n else 0.0


def atb_nll(model: torch.nn.Module, parts: Parts, pieces: list[np.ndarray], seq_len: int, rnn: bool
            ) -> dict[str, Any]:
    """The lower voices' NLL over the pieces, with the melody read first and left to right, per token and 16th."""
    nll = {True: [0.0, 0], False: [0.0, 0]}
    frames = 0
    for piece in pieces:
        for first in (True, False):
            s, n = lower_voice_nll(model, parts, piece, first, seq_len, rnn)
            nll[first][0] += s
            nll[first][1] += n
        q = parts.decode_quantized(piece)
        frames += int(np.ceil((q["onset"] + q["duration"]).max() - q["offset"]) * 4 / parts.resolution)
    return {"atb_tokens": nll[True][1], "frames_16th": frames,
            "per_token_melody_first": nll[True][0] / max(nll[True][1], 1),
            "per_token_left_to_right": nll[False][0] / max(nll[False][1], 1),
            "per_16th_melody_first": nll[True][0] / max(frames, 1),
            "per_16th_left_to_right": nll[False][0] / max(frames, 1)}


def run_benchmark(opt: BenchOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    model, enc, meta = load_model(opt.checkpoint, opt.device)
    parts = enc.parts()
    if parts is None:
        raise MusesynthError(f"{opt.checkpoint} reads the '{enc.name}' encoding; the benchmark needs a model of the "
                             f"parts encoding")
    manifest = json.loads((Path(opt.dataset) / "manifest.json").read_text())
    if manifest.get("vocab_fingerprint") != enc.vocab.fingerprint:
        raise MusesynthError(f"{opt.dataset} was not made with {opt.checkpoint}'s vocabulary")
    if not opt.splits or len(set(opt.splits)) != len(opt.splits):
        raise MusesynthError(f"splits must name each of {', '.join(SPLITS)} at most once, and at least one (got "
                             f"{','.join(opt.splits) or 'none'})")
    pieces, names = [], []
    for split in opt.splits:
        if split not in SPLITS:
            raise MusesynthError(f"unknown split '{split}' ({', '.join(SPLITS)})")
        pieces += [np.asarray(p, np.int64) for p in load_pieces(Path(opt.dataset), split)]
        names += [f["file"] for f in manifest["files"] if f["split"] == split]
    if len(pieces) != len(names):
        raise MusesynthError(f"{opt.dataset}: its manifest does not match its splits' pieces")
    if opt.limit:
        pieces, names = pieces[: opt.limit], names[: opt.limit]
    rnn = meta.family in ("gru", "lstm")
    seq_len = meta.model_config.seq_len
    out: dict[str, Any] = {"checkpoint": opt.checkpoint, "dataset": opt.dataset, "chorales": len(pieces),
                           "splits": list(opt.splits),
                           "seeds": opt.seeds, "particles": opt.particles,
                           "sampling": {"temperature": opt.sampling.temperature, "top_p": opt.sampling.top_p}}
    out["nll"] = atb_nll(model, parts, pieces, seq_len, rnn)
    log(f"NLL of Bach's A/T/B given the soprano: {out['nll']['per_token_melody_first']:.3f} nats per token "
        f"({out['nll']['per_16th_melody_first']:.3f} per 16th); without the melody first "
        f"{out['nll']['per_token_left_to_right']:.3f} ({out['nll']['per_16th_left_to_right']:.3f})")

    bach = [piece_from_score(parts.decode(p)) for p in pieces]
    made: list[Piece] = []
    exact = total = matched = beats = worst = complete = 0
    loaded = (model, enc, meta)  # loaded once: every melody and the free pieces use it
    with tempfile.TemporaryDirectory() as tmp:
        for i, (piece, name) in enumerate(zip(pieces, names, strict=True)):
            melody = soprano_midi(parts, piece, Path(tmp) / f"melody{i}.mid")
            want = piece_from_score(symusic.Score(str(melody)))
            given = set(zip(np.round(want.onset, 4), np.round(want.duration, 4), want.pitch, strict=True))
            for seed in range(opt.seeds):
                try:
                    h = harmonizations(HarmonizeOptions(melody=str(melody), seed=seed, device=opt.device,
                                                        sampling=opt.sampling, particles=opt.particles),
                                       loaded=loaded)[0]
                except MusesynthError as exc:
                    log(f"  {name}: skipped ({exc})")
                    continue
                p = piece_from_score(h.score)
                made.append(p)
                sop = p.part == 0
                got = set(zip(np.round(p.onset[sop], 4), np.round(p.duration[sop], 4), p.pitch[sop], strict=True))
                exact += len(given & got)
                total += len(given)
                m, b = beat_match(p, bach[i])
                matched, beats = matched + m, beats + b
                worst = max(worst, most_sounding(p.onset * 12, p.duration * 12))
                complete += bool(h.info["complete"])
            log(f"  {i + 1}/{len(pieces)} {name}")
    out["harmonizations"] = {"pieces": len(made), "complete": complete, "melody_exact": exact,
                             "melody_notes": total, "beat_pitch_class_match": matched / max(beats, 1),
                             "beats": beats, "most_sounding": worst,
                             "over_four": float(np.mean([over_four(p) for p in made])) if made else 0.0,
                             "long_notes": long_share(made)}
    out["bach"] = {"long_notes": long_share(bach), "over_four": float(np.mean([over_four(p) for p in bach]))}
    out["voice_leading"] = voice_leading_report(made, bach)
    sets = {"harmonizations": made}
    if opt.unconditioned:
        request = GenerateOptions(num_samples=len(pieces), seed=0).request()  # the yardstick: generate's defaults
        free = [piece_from_score(g.score) for g in generate_pieces(Model(*loaded), request)]
        sets["unconditioned"] = free
        out["unconditioned_voice_leading"] = voice_leading_report(free, bach)["generated"]
        out["unconditioned"] = {"pieces": len(free), "long_notes": long_share(free),
                                "over_four": float(np.mean([over_four(p) for p in free])) if free else 0.0}
    out["classifier"] = {str(w): judge_report(sets, bach, w) for w in opt.windows}
    return out


LABELS = {"harmonizations": "harmonisations of the sopranos", "unconditioned": "the model's own pieces"}


def format_benchmark(r: dict[str, Any]) -> list[str]:
    h, n = r["harmonizations"], r["nll"]
    split = "+".join(r.get("splits", ["test"]))
    lines = [f"harmonisation benchmark: {r['chorales']} {split}-split chorales, {r['seeds']} seed(s) each, "
             f"{r['checkpoint']}",
             f"  NLL of Bach's alto/tenor/bass given the soprano: {n['per_token_melody_first']:.3f} nats per token, "
             f"{n['per_16th_melody_first']:.3f} per 16th ({n['atb_tokens']} tokens); read left to right without "
             f"the melody first: {n['per_token_left_to_right']:.3f} / {n['per_16th_left_to_right']:.3f}",
             f"  harmonisations: {h['pieces']} ({h['complete']} complete); melody notes exact "
             f"{h['melody_exact']}/{h['melody_notes']}; beats with Bach's pitch-class set "
             f"{h['beat_pitch_class_match']:.1%} of {h['beats']}; most notes sounding {h['most_sounding']}; time "
             f"with more than four notes {h['over_four']:.2%}; notes of 2+ beats {h['long_notes']:.1%} (Bach "
             f"{r['bach']['long_notes']:.1%})"]
    lines += format_voice_leading(r["voice_leading"])
    if "unconditioned_voice_leading" in r:
        u = r["unconditioned_voice_leading"]
        lines.append(f"  the model's own pieces: parallels per 100 changes {u['parallels_per_100']:.2f}, crossings "
                     f"{u['crossings']:.1%}, outside SATB ranges {u['out_of_range']:.1%}, more than four notes "
                     f"{u['over_four']:.1%}, notes of 2+ beats {r['unconditioned']['long_notes']:.1%}")
    lines.append(f"classifier (harmonisations and the model's own pieces vs Bach's {split} chorales):")
    for rep in r["classifier"].values():
        lines += format_judge(rep, LABELS)
    return lines
