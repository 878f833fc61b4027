"""`musesynth generate` and the studio's jobs: primer(s) + checkpoint -> new pieces on disk, each as .mid, .wav,
.png and a .json sidecar. An adapter over the pipeline (``generate.pipeline``): options in, one request per primer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import symusic

from musesynth.atomic import atomic_write, atomic_write_json
from musesynth.data.files import find_midi_files, why_unreadable
from musesynth.errors import BadRequest, MidiReadError, MusesynthError
from musesynth.generate.model import Model
from musesynth.generate.pipeline import GeneratedPiece, generate_pieces, with_files
from musesynth.generate.ranges import moved_by
from musesynth.generate.render import piano_roll, render_wav
from musesynth.generate.request import DEFAULT_LENGTH, Controls, GenerationRequest, Primer, cli_flag
from musesynth.generate.sampling import Sampling
from musesynth.outputs import (
    WrittenScore,
    check_writable_dir,
    file_ids,
    fingerprint,
    free_name,
    is_our_piece,
    piece_name,
)

OUTPUT_SUFFIXES = (".mid", ".wav", ".png", ".json")


@dataclass
class GenerateOptions:
    """`musesynth generate`'s options: a request's fields (one request per primer file) and where and what to
    write. Errors name the CLI's flags."""

    checkpoint: str | None = None  # None: the model shipped in the package
    primer: str | None = None  # a MIDI file or a folder of them
    primer_tokens: int | None = None
    primer_seconds: float | None = None
    length: int = DEFAULT_LENGTH
    sampling: Sampling = field(default_factory=Sampling)
    seed: int | None = None  # None: a fresh seed, printed and recorded in each sidecar
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
    particles: int = 1  # parts models: SMC particles per piece (``generate.particles``)
    transpose: str | int = "auto"  # semitones a primer is read at, the new notes moved back (``ranges.piece_shift``)

    def request(self, primer: Path | None = None) -> GenerationRequest:
        """The request for one primer file (None: no primer; the cut still comes from these options, so a cut
        without a primer is refused by the request's checks)."""
        return GenerationRequest(
            primer=Primer(primer, self.primer_tokens, self.primer_seconds),
            controls=Controls(self.key, self.composer, self.tempo), sampling=self.sampling, length=self.length,
            num_samples=self.num_samples, seed=self.seed, exact_repeats=not self.free_repeats,
            use_cache=not self.no_cache, particles=self.particles, transpose=self.transpose)

    def validate(self) -> None:
        """The request's checks (worded with the CLI's flags) and the soundfont."""
        with flags():
            self.request(Path(self.primer) if self.primer is not None else None).validate()
        if self.soundfont is not None and self.wav:
            check_soundfont(self.soundfont)


def check_sample_options(opt: Any) -> None:
    """The options `generate` and `infill` share (samples, seed, sampling dials: the request's checks, as
    ``BadRequest``s) and the soundfont."""
    GenerationRequest(sampling=opt.sampling, num_samples=opt.num_samples, seed=opt.seed).validate()
    if opt.soundfont is not None and opt.wav:
        check_soundfont(opt.soundfont)


class flags:
    """A context in which ``BadRequest``s are reworded with the CLI's flags (``cli_flag``), or as ``names`` spells
    the fields (infill's ``piece`` is ``--input``; the studio's fields)."""

    def __init__(self, names: Callable[[str], str] | None = None) -> None:
        self.names = names or cli_flag

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, BadRequest):
            raise exc.named(self.names) from None


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


def _primers(spec: str | None) -> list[Path | None]:
    if spec is None:
        return [None]
    p = Path(spec)
    if p.is_dir():
        files = find_midi_files(p)
        if not files:
            raise MusesynthError(f"no .mid/.midi primer files in {p}")
        return list(files)
    why = why_unreadable(p, str(p))
    if why is not None:
        raise MusesynthError(f"primer {why}")
    return [p]


def run_generate(opt: GenerateOptions, log: Callable[[str], None] = print,
                 progress: Callable[[float], None] | None = None) -> list[dict[str, Any]]:
    """Generate for each primer and write the pieces; a bad primer in a folder is reported (``log``) and skipped.
    Without a seed, one fresh seed serves every primer. ``progress`` (the studio's progress bar) hears the share
    of model calls done, in [0, 1]. Returns the sidecars written."""
    opt.validate()
    opt = replace(opt, seed=opt.request().resolved().seed)
    primers = _primers(opt.primer)
    out_dir = check_writable_dir(opt.out_dir, "-o/--out-dir")
    model = Model.load(opt.checkpoint, opt.device, note=log)
    if progress is not None:
        model.net.register_forward_hook(call_counter(progress, len(primers) * (opt.length + 1)))
    results, skipped, written = [], [], set()
    read = file_ids(primers)
    for primer_path in primers:
        try:
            with flags():
                pieces = generate_pieces(model, opt.request(primer_path))
        except MidiReadError as exc:
            if len(primers) == 1:
                raise MusesynthError(str(exc)) from None
            skipped.append(str(exc))
            log(f"skipped: {exc}")
            continue
        stem = os.fsdecode(primer_path.stem) if primer_path is not None else "unconditioned"
        for i, piece in enumerate(pieces):
            name = f"{stem}_{model.meta.family}_seed{opt.seed}_{i}"
            base = piece_name(out_dir, name, OUTPUT_SUFFIXES, opt.overwrite, inputs=read)  # never over a primer
            if base in written:  # two primers of one stem (x.mid, x.midi): never over this run's own piece
                base = free_name(out_dir, name, OUTPUT_SUFFIXES)
            written.add(base)
            results.append(write_piece(piece, base, opt, primer_path))
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


def write_piece(piece: GeneratedPiece, base: Path, opt: GenerateOptions, primer_path: Path | None) -> dict[str, Any]:
    s, seed = opt.sampling, piece.seed
    title = f"{piece.info.model} | {shown(primer_path.name) if primer_path else 'no primer'} | " \
            f"T={s.temperature} k={s.top_k} p={s.top_p} seed={seed}"
    info = write_outputs(piece.score, base, asdict(piece.info), opt.soundfont if opt.wav else False,
                         title if opt.png else None, piece.boundary)
    return asdict(with_files(piece, midi=info["midi"], wav=info["wav"], png=info["png"],
                             wav_skipped=info.get("wav_skipped")).info)


def write_outputs(score: symusic.Score, base: Path, info: dict[str, Any], soundfont: str | None | bool,
                  png_title: str | None, marks: float | tuple[float, float] | None) -> dict[str, Any]:
    """``base``.mid, .wav (``soundfont`` False: none), .png (``png_title`` None: none; ``marks`` where the
    primer ends or the infilled span) and the .json sidecar ``info``, which gains their paths and fingerprints
    (how a later --overwrite knows them for ours, unchanged). Over an earlier piece of ours (``piece_name`` chose
    ``base`` for it), its WAV or PNG that this piece does not have is removed once the sidecar is written, so
    no file of the old piece passes for the new one's. On an OSError (a full disk) what was written is removed:
    no piece is left without its sidecar."""
    earlier = [_with(base, s) for s in (".wav", ".png")] if is_our_piece(base, OUTPUT_SUFFIXES) else []
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
        info["sha256"] = {p.name[len(base.name):]: fingerprint(p) for p in written}
        atomic_write_json(_with(base, ".json"), info)
    except OSError as exc:
        for p in written:
            p.unlink(missing_ok=True)
        raise MusesynthError(f"cannot write {base.name} in {base.parent}: {exc.strerror or exc}") from None
    for p in earlier:
        if p not in written:
            p.unlink(missing_ok=True)
    return info


def write_scores(results: Iterable[WrittenScore], out_dir: Path, opt: Any) -> list[dict[str, Any]]:
    """Write harmonize's or infill's results into ``out_dir`` (checked before the work), as ``opt`` asks: a new
    name beside an existing file unless ``opt.overwrite``, WAV unless ``not opt.wav``, PNG unless ``not opt.png``."""
    return [write_outputs(r.score, piece_name(out_dir, r.name, OUTPUT_SUFFIXES, opt.overwrite), r.info,
                          opt.soundfont if opt.wav else False, r.title if opt.png else None, r.marks)
            for r in results]


def summarize(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['midi']}  ({r['notes']} notes, {r['seconds']} s, {r['generated_tokens']} new tokens)")
        if r["wav"] or r.get("wav_skipped"):  # nothing to say after --no-wav
            lines.append(f"  wav: {r['wav'] or 'not written - ' + r['wav_skipped']}")
        if r["png"]:
            lines.append(f"  png: {r['png']}")
        if r.get("shift"):
            k = r["shift"]
            lines.append(f"  the model read the primer {moved_by(k)} (its "
                         f"parts lie outside the voices' ranges, or --transpose) and its notes moved back: the piece "
                         f"sounds at the primer's pitch")
        if r["notes"] == 0:
            lines.append("  warning: this piece has no notes (try a higher --top-k or --temperature)")
        elif r.get("primer") and r["generated_tokens"] <= 1:
            lines.append("  note: the model ended the piece where the primer ends (a whole piece as primer?); "
                         "use less of it: --primer-seconds or --primer-tokens")
    return "\n".join(lines)
