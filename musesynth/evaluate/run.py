"""`musesynth evaluate`: test-set NLL / perplexity / accuracy against n-gram baselines, and musical
statistics of generated pieces against held-out pieces."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musesynth.artifacts.load import load_model
from musesynth.data.dataset import is_dataset, load_offsets, load_pieces, load_split, load_vocab
from musesynth.data.key_frame import pieces_to_frame, to_frame
from musesynth.data.split import SPLITS
from musesynth.device import pick_device
from musesynth.errors import MusesynthError
from musesynth.evaluate.baselines import bigram, score_bigram, score_unigram, unigram
from musesynth.evaluate.infill import format_infill, infill_vs_continuation
from musesynth.evaluate.judge import format_judge, judge_report, total_fits, windows
from musesynth.evaluate.music_stats import Piece, compare, mean_distance, piece_from_score
from musesynth.evaluate.musicality import (
    build_copy_index,
    ending_report,
    key_match,
    key_report,
    memorisation_report,
    repetition_summary,
)
from musesynth.evaluate.progress import Steps, count_calls
from musesynth.evaluate.reference import reference_pieces
from musesynth.evaluate.voice_leading import format_voice_leading, voice_leading_report
from musesynth.generate.model import Model
from musesynth.generate.particles import check_particles
from musesynth.generate.pipeline import decode_prompt, require_voices
from musesynth.generate.prompt import build_prompt
from musesynth.generate.request import GenerationRequest
from musesynth.generate.run import flags
from musesynth.generate.sampling import Sampling
from musesynth.models.likelihood import LossStats, split_loss
from musesynth.tokenize import Encoding


@dataclass
class EvaluateOptions:
    """Every `musesynth evaluate` setting with its default (the parser reads them from here)."""

    checkpoint: str
    dataset: str | None = None
    split: str = "test"
    batch_size: int = 64
    device: str = "auto"
    samples: int = 48
    length: int | None = None  # tokens per generated piece; None: ``default_length`` of the model's encoding
    seed: int = 0
    sampling: Sampling = field(default_factory=Sampling)
    free_repeats: bool = False  # sample REPEAT bars' notes instead of copying them (generate --free-repeats)
    windows: tuple[int, ...] = (8, 16)  # window lengths (beats) of the classifier test
    reference_set: str | None = None  # a folder of MIDI scored beside the model (e.g. the JS Fake Chorales)
    repeats: int = 3  # classifier repeats (new subsample and folds each)
    quiet: bool = False  # no progress lines on stderr
    particles: int = 1  # parts models: SMC particles per generated piece (generate --particles)

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise MusesynthError(f"--split must be one of {', '.join(SPLITS)} (got {self.split})")
        for name, low in (("batch_size", 1), ("samples", 0), ("length", 1)):
            if getattr(self, name) is not None and getattr(self, name) < low:
                raise MusesynthError(f"--{name.replace('_', '-')} must be at least {low} (got {getattr(self, name)})")
        self.sampling.validate()
        if not self.windows or any(not 1 <= w <= 64 for w in self.windows):
            raise MusesynthError(f"--windows must be beats between 1 and 64 (got {','.join(map(str, self.windows))})")
        if self.repeats < 1:
            raise MusesynthError(f"--repeats must be at least 1 (got {self.repeats})")
        with flags():
            check_particles(self.particles)
        if self.reference_set is not None and not Path(self.reference_set).is_dir():
            raise MusesynthError(f"--reference-set must be a folder of MIDI files (not found: {self.reference_set})")


@dataclass
class Metrics:
    nll: float
    perplexity: float
    accuracy: float
    tokens: int

    @classmethod
    def of(cls, s: LossStats) -> Metrics:
        return cls(s.nll, s.perplexity, s.accuracy, s.tokens)


@dataclass
class Evaluation:
    """What `musesynth evaluate` measures; ``to_dict`` is its JSON."""

    checkpoint: str
    model: str
    params: int
    dataset: str
    split: str
    seq_len: int
    model_metrics: Metrics
    baselines: dict[str, Metrics]
    music_stats: dict[str, dict[str, float]] | None = None
    music_stats_mean_distance: float | None = None
    music_stats_setup: dict[str, int | bool] | None = None
    musicality: dict[str, dict[str, Any]] | None = None
    infill: dict[str, Any] | None = None  # infill vs continuation NLL (models trained for infilling)
    reference_set: dict[str, Any] | None = None  # the folder scored beside the model (--reference-set)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def json_safe(x: Any) -> Any:
    """NaN/inf (a metric with too little data) become null, so the JSON parses anywhere."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def musicality(gen: list[Piece], ref: list[Piece], train: list[Piece], seed: int,
               asked_keys: list[tuple[int, str] | None] | None = None,
               ref_keys: list[tuple[int, str] | None] | None = None, *, judge_real: list[Piece] | None = None,
               reference: list[Piece] | None = None, window_lengths: tuple[int, ...] = (8, 16), repeats: int = 3,
               steps: Steps | None = None,
               whole: tuple[list[Piece], list[Piece]] | None = None) -> dict[str, Any]:
    """Can a classifier tell generated (and ``reference``, e.g. the JS Fake Chorales) from held-out pieces
    (``judge_real``, default ``ref``), beside its calibration controls? Do pieces repeat passages as the
    corpus does, sit in its keys (and the key each was asked for), and avoid copying the training set?
    ``whole``: the reference set's and the held-out pieces uncut, to judge the reference set's copying on."""
    steps = steps or Steps(quiet=True)
    keys = key_report(gen, ref)
    if asked_keys is not None and any(k is not None for k in asked_keys):
        keys["key_match"] = key_match(gen, asked_keys)
        if ref_keys is not None:  # how often the estimators name real pieces' own keys: the ceiling
            keys["key_match_held_out"] = key_match(ref, ref_keys)
    real = judge_real if judge_real is not None else ref
    sets = {"generated": gen} | ({"reference_set": reference} if reference is not None else {})
    judged = {}
    for wb in window_lengths:
        w_real = windows(real, wb)
        total = total_fits({k: windows(v, wb) for k, v in sets.items()}, w_real, repeats)
        with steps.step(f"classifier, {wb}-beat windows", total, "fit") as bar:
            judged[str(wb)] = judge_report(sets, real, wb, repeats, seed, tick=bar.update)
    first = judged[str(window_lengths[0])]
    with steps.step("repeats, keys and copying"):
        index = build_copy_index(train)
        out: dict[str, Any] = {
            "classifier": {"accuracy": first["sets"]["generated"]["accuracy"],
                           "control_accuracy": first["controls"]["real_vs_real"]["accuracy"],
                           "window_beats": first["window_beats"], "calibrated": all(j["calibrated"]
                                                                                    for j in judged.values()),
                           "by_window": judged},
            "repetition": repetition_summary(gen),
            "repetition_held_out": repetition_summary(ref),
            "keys": keys,
            "memorisation": memorisation_report(gen, train, ref, index=index),
        }
        if reference is not None:
            ref_whole, held_whole = whole or (reference, ref)
            out["reference_set"] = {"pieces": len(reference), "repetition": repetition_summary(reference),
                                    "keys": key_report(reference, ref),
                                    "memorisation": memorisation_report(ref_whole, train, held_whole, index=index)}
    return out


def baselines(dataset: Path, split: str, vocab_size: int) -> dict[str, Metrics]:
    train, tokens = np.asarray(load_split(dataset, "train")), np.asarray(load_split(dataset, split))
    return {"unigram": Metrics.of(score_unigram(unigram(train, vocab_size), tokens)),
            "bigram": Metrics.of(score_bigram(bigram(train, vocab_size), tokens))}


def held_out_pieces(enc: Encoding, dataset: Path, split: str, max_tokens: int, limit: int) -> list[Piece]:
    """Held-out pieces cut to the same token budget as the generated ones, so lengths match."""
    pieces = load_pieces(dataset, split)[:limit]
    return [piece_from_score(enc.decode(p[:max_tokens])) for p in pieces]


def held_out_keys(enc: Encoding, dataset: Path, split: str, limit: int) -> list[tuple[int, str] | None]:
    """The key in each held-out piece's header (as ``held_out_pieces`` orders them); None without one."""
    keyed = enc.keyed()
    return [None if keyed is None else keyed.key_of(p) for p in load_pieces(dataset, split)[:limit]]


def generated_pieces(model: Model, n: int, length: int, seed: int, sampling: Sampling, exact_repeats: bool = True,
                     particles: int = 1) -> tuple[list[Piece], list[tuple[int, str] | None], list[bool]]:
    """Unconditioned pieces, as `musesynth generate` writes them without a primer (keys and composers from
    the priors), the key each was asked for (None without key tokens) and whether each ended (EOS)."""
    enc = model.encoding
    request = GenerationRequest(sampling=sampling, length=length, num_samples=n, seed=seed,
                                exact_repeats=exact_repeats, particles=particles).validate()
    seqs = decode_prompt(model, build_prompt(request, model), request)
    keyed = enc.keyed()
    return ([piece_from_score(enc.decode(s)) for s in seqs], [keyed.key_of(s) if keyed else None for s in seqs],
            [bool(s[-1] == enc.eos_id) for s in seqs])


def _dataset_for(opt: EvaluateOptions, trained_on: str, enc: Encoding) -> Path:
    ds = Path(opt.dataset or trained_on)
    if not is_dataset(ds):
        raise MusesynthError(f"dataset not found: {ds} (pass -d DATASET_DIR)")
    if load_vocab(ds).tokens != enc.vocab.tokens:
        raise MusesynthError(f"dataset {ds} uses another vocabulary than the checkpoint")
    return ds


def scored(model: torch.nn.Module, tokens: np.ndarray, seq_len: int, batch_size: int, dev: torch.device,
           pad_id: int, steps: Steps, name: str) -> LossStats:
    """``split_loss`` in at least four calls, so the progress bar has an ETA after the first quarter. The
    windows are the same (each call gets whole windows: ``seq_len`` tokens and the next one as the last
    target), so the sums are the same."""
    n_win = max(0, -(-(len(tokens) - 1) // seq_len))
    chunk = max(1, min(batch_size, -(-n_win // 4)))
    total = LossStats()
    with steps.step(name, n_win, "window") as bar:
        for a in range(0, n_win, chunk):
            b = min(a + chunk, n_win)
            part = split_loss(model, tokens[a * seq_len : b * seq_len + 1], seq_len, batch_size, dev, pad_id)
            total = LossStats(total.nll_sum + part.nll_sum, total.tokens + part.tokens, total.correct + part.correct)
            bar.update(b - a)
    return total


def default_length(enc: Encoding) -> int:
    """Tokens per piece for the musical statistics: 600, or as much more as a chords vocabulary's CHORD tokens
    add (14% in the 410 chorales: 316,204 tokens instead of 276,865), so every model is judged on as much music
    (the classifier learns from more windows of longer pieces: a shorter budget would flatter a model)."""
    return 685 if getattr(enc, "chords", False) else 600


def evaluate_checkpoint(opt: EvaluateOptions) -> Evaluation:
    return next(evaluate_seeds(opt, (opt.seed,)))


def evaluate_seeds(opt: EvaluateOptions, seeds: tuple[int, ...]) -> Iterator[Evaluation]:
    """One evaluation per sampling seed (``opt.seed`` aside), each as soon as it is done: what does not depend on
    the seed (the likelihood, the held-out, training and reference pieces) is computed once, the pieces drawn and
    judged once per seed."""
    opt.validate()
    dev = pick_device(opt.device)
    model, enc, meta = load_model(opt.checkpoint, dev)
    with flags():
        require_voices(enc, opt.particles)  # before minutes of scoring
    length = opt.length or default_length(enc)
    ds = _dataset_for(opt, meta.dataset, enc)
    tokens = load_split(ds, opt.split)
    if len(tokens) < 2:
        raise MusesynthError(f"the {opt.split} split of {ds} is empty")
    if meta.key_frames:  # scored as the model reads music: each piece moved to its frame
        tokens = pieces_to_frame(enc, tokens, load_offsets(ds, opt.split), meta.key_frames)[0]
    seq_len = meta.model_config.seq_len
    steps = Steps(opt.quiet)
    s = scored(model, tokens, seq_len, opt.batch_size, dev, enc.pad_id, steps, f"scoring the {opt.split} split")
    result = Evaluation(checkpoint=meta.path, model=meta.family, params=meta.num_params, dataset=str(ds),
                        split=opt.split, seq_len=seq_len, model_metrics=Metrics.of(s),
                        baselines=baselines(ds, opt.split, len(enc.vocab)))
    if enc.bar_infill() is not None:
        bars = 4 if seq_len >= 256 else 1  # 4 bars of chorale take ~150 tokens: a small context fits one
        pieces = load_pieces(ds, opt.split)
        if meta.key_frames:
            pieces = [to_frame(enc, p, meta.key_frames)[0] for p in pieces]
        result.infill = infill_vs_continuation(model, enc, pieces, seq_len, bars)
    if opt.samples == 0:
        yield from (result for _ in seeds)
        return
    reference = reference_whole = None
    if opt.reference_set is not None:  # read first: a bad folder stops the run before minutes of generation
        with ExitStack() as stack:
            reference, reference_whole, skipped = reference_pieces(
                opt.reference_set, enc, length + 1,
                lambda n: stack.enter_context(steps.step("reading the reference set", n, "file")))
        result.reference_set = {"folder": opt.reference_set, "pieces": len(reference), "skipped": skipped}
    limit = max(opt.samples, 64)
    ref = held_out_pieces(enc, ds, opt.split, length + 1, limit=limit)
    train = [piece_from_score(enc.decode(p)) for p in load_pieces(ds, "train")]
    ref_keys = held_out_keys(enc, ds, opt.split, limit)
    other = "val" if opt.split == "test" else "test"  # more unseen real pieces for the classifier's controls
    real = ref + held_out_pieces(enc, ds, other, length + 1, limit=limit)
    whole = [piece_from_score(enc.decode(p)) for p in load_pieces(ds, opt.split)[:limit]]  # closes: not cut
    for seed in seeds:
        with (steps.step(f"generating {opt.samples} pieces of {length} tokens", length + 1, "step") as bar,
              count_calls(model, bar)):
            gen, asked, ended = generated_pieces(Model(model, enc, meta), opt.samples, length, seed,
                                                 opt.sampling, exact_repeats=not opt.free_repeats,
                                                 particles=opt.particles)
        r = replace(result, music_stats=compare(ref, gen))
        r.music_stats_mean_distance = mean_distance(r.music_stats)
        r.music_stats_setup = {"generated": opt.samples, "held_out": len(ref), "tokens_per_piece": length,
                               "exact_repeats": enc.repeat_spec() is not None and not opt.free_repeats,
                               "particles": opt.particles}
        r.musicality = musicality(gen, ref, train, seed, asked, ref_keys, judge_real=real,
                                  reference=reference, window_lengths=opt.windows, repeats=opt.repeats,
                                  steps=steps, whole=(reference_whole, whole) if reference_whole else None)
        r.musicality["endings"] = ending_report(gen, ended, asked)
        r.musicality["endings_held_out"] = ending_report(whole, [True] * len(whole), ref_keys)
        r.musicality["voice_leading"] = voice_leading_report(gen, ref)
        yield r


def format_result(r: Evaluation) -> str:
    m, b = r.model_metrics, r.baselines
    lines = [f"{r.model} ({r.params:,} params) on the {r.split} split: {m.tokens:,} tokens, windows of {r.seq_len}",
             f"{'':10s}{'NLL (nats)':>12s}{'perplexity':>12s}{'accuracy':>10s}"]
    for name, v in (("model", m), ("unigram", b["unigram"]), ("bigram", b["bigram"])):
        lines.append(f"{name:10s}{v.nll:12.4f}{v.perplexity:12.2f}{100 * v.accuracy:9.1f}%")
    if r.infill is not None:
        lines.append(format_infill(r.infill))
    if r.music_stats is not None:
        particles = (r.music_stats_setup or {}).get("particles", 1)
        drawn = f" (each the heaviest of {particles} particles)" if particles > 1 else ""
        lines.append(f"musical statistics, generated{drawn} vs held-out (overlap distance 0 = same, KL):")
        for k, v in r.music_stats.items():
            lines.append(f"  {k:14s}{v['distance']:8.3f}{v['kl']:9.3f}")
        lines.append(f"  {'mean':14s}{r.music_stats_mean_distance:8.3f}")
    if r.musicality is not None:
        lines += format_musicality(r.musicality)
    if r.musicality is not None and "voice_leading" in r.musicality:
        lines += format_voice_leading(r.musicality["voice_leading"])
    return "\n".join(lines)


def format_endings(e: dict[str, Any], e0: dict[str, Any]) -> str:
    if e["tonic_close"] != e["tonic_close"]:  # NaN: no key tokens
        return (f"  pieces that end before the limit {e['ended']:.0%}: on a full chord {e['full_close']:.0%} "
                f"(held-out whole pieces: {e0['full_close']:.0%})")
    return (f"  pieces that end before the limit {e['ended']:.0%}: on the tonic's bass {e['tonic_close']:.0%}, on a "
            f"full chord {e['full_close']:.0%} (held-out whole pieces: {e0['tonic_close']:.0%} / "
            f"{e0['full_close']:.0%})")


def format_musicality(m: dict[str, dict[str, Any]]) -> list[str]:
    c, rep, rep0, k, mem = (m[x] for x in ("classifier", "repetition", "repetition_held_out", "keys",
                                           "memorisation"))
    labels = {"generated": "the model's pieces", "reference_set": "reference set"}
    judged = [line for j in c.get("by_window", {}).values() for line in format_judge(j, labels)]
    ref = m.get("reference_set")
    return [
        "musicality (generated vs held-out):",
        "  classifier: 50% = it found nothing that tells a set from held-out Bach (at this many windows and with these "
        "features), 100% = it tells every window" + ("" if c.get("calibrated", True) else
                                                      "; WARNING: a control failed (see below)"),
        *judged,
        f"  pieces with an internal repeat >= 8 beats {rep['share_with_repeat']:.0%} (held-out "
        f"{rep0['share_with_repeat']:.0%}); mean longest repeat {rep['mean_longest_repeat_beats']:.1f} beats "
        f"(held-out {rep0['mean_longest_repeat_beats']:.1f})",
        f"  keys with 4+ sharps/flats {k['generated_share_4plus_accidentals']:.0%} (held-out "
        f"{k['reference_share_4plus_accidentals']:.0%}); key distribution distance "
        f"{k['key_distribution_distance']:.3f}; scale consistency {k['scale_consistency_generated']:.3f} "
        f"(held-out {k['scale_consistency_reference']:.3f})"
        + (f"; in the key asked for {k['key_match']['match']:.0%}, {k['key_match']['match_cadence']:.0%} by the "
           f"estimate with the final bass (its signature {k['key_match']['same_signature']:.0%})"
           if "key_match" in k else "")
        + (f"; held-out pieces in their own key {k['key_match_held_out']['match']:.0%} / "
           f"{k['key_match_held_out']['match_cadence']:.0%}" if "key_match_held_out" in k else ""),
        *([format_endings(m["endings"], m["endings_held_out"])] if "endings" in m else []),
        f"  longest run copied from training: median {mem['median_beats']:.1f}, max {mem['max_beats']:.1f} beats, "
        f"{mem['share_ge_16_beats']:.0%} >= 16 beats (held-out vs train: median "
        f"{mem['held_out_median_beats']:.1f}, max {mem['held_out_max_beats']:.1f})"
        + ("; MEMORISED: many pieces copy 16+ beats of a training piece" if mem.get("memorised") else ""),
        *([f"  reference set ({ref['pieces']} pieces): longest run copied from training: median "
           f"{ref['memorisation']['median_beats']:.1f}, max {ref['memorisation']['max_beats']:.1f} beats, "
           f"{ref['memorisation']['share_ge_16_beats']:.0%} >= 16 beats"
           + ("; MEMORISED: many pieces copy 16+ beats of a training piece" if ref["memorisation"].get("memorised")
              else "")] if ref else []),
    ]
