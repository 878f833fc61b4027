"""An infill's result written onto the input itself, so that every note the fill does not rewrite is the file's own.

The model reads the input on its grid (notes quantised, velocities dropped, tempos in bins), but what a user keeps
must come back as it was: a played piece's timing and dynamics, its pedal, a DAW session's tracks, names,
programs, tempo map and markers. So the result is a copy of the input in which only the notes the fill replaces
are taken out (those of the rewritten parts whose onset falls in the span, on the encoding's grid) and the
model's notes put in (on the grid, at the velocity of the notes they replace). A voice the input lacks that the
fill writes comes on a track of its own among the voices, in the file's own order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import symusic

from musesynth.generate.layout import Layout
from musesynth.tokenize import Encoding
from musesynth.tokenize.midi_io import VOICES, part_tracks, score_notes, score_parts, track_slots, voice_role

DEFAULT_VELOCITY = 80  # a new note where the input gives none to match (the encodings decode at 80)


def grid_shift(enc: Encoding, source: symusic.Score, as_read: dict[str, Any], resolution: int) -> int:
    """Steps to add to an input time (``round(tick * resolution / tpq)``) to have its step in the encoding's reading
    ``as_read`` (``decode_quantized`` of the input's tokens): a lead-in rest shorter than a bar, read as a pickup,
    moves every note by the same steps."""
    parts = enc.parts()
    n = score_parts(source, parts.max_parts, parts.drop_extra)[0] if parts is not None else score_notes(source)
    if not n.onset.size or not as_read["onset"].size:
        return 0
    return int(as_read["onset"].min()) - int(np.rint(n.onset.min() * resolution / n.tpq))


def between(index: list[float], p: int) -> float:
    """A place in the input's track order for a part inserted at ``p`` of the parts (whose places are ``index``):
    between its neighbours, so a voice the input lacks sits among the voices in the file's own direction (a file
    listing Bass, Alto, Soprano gets its added Tenor between Bass and Alto)."""
    if 0 < p < len(index):
        return (index[p - 1] + index[p]) / 2
    step = -0.5 if len(index) > 1 and index[0] > index[-1] else 0.5  # a file listing its voices bottom up
    return index[p] - step if p == 0 else index[-1] + step


def track_places(enc: Encoding, source: symusic.Score, lay: Layout) -> np.ndarray:
    """Each track's part in the piece the model reads (``lay``: laid out), -1 for a track it does not read (drums,
    parts beyond its ``max_parts``, an instrument the layout left out); 0 for every pitched track where the
    encoding has no parts (one stream)."""
    parts = enc.parts()
    if parts is None:
        return np.array([0 if not t.is_drum and len(t.notes) else -1 for t in source.tracks], np.int64)
    slot = track_slots(source, parts.max_parts, parts.drop_extra)
    places = lay.place_of(int(slot.max()) + 1 if slot.size else 0)
    return np.where(slot >= 0, places[np.maximum(slot, 0)], -1)


def own_tracks(enc: Encoding, source: symusic.Score, lay: Layout) -> dict[int, int]:
    """Each laid-out part's own track (the track ``score_parts`` reads it from first; tracks merged into the last
    part beyond ``max_parts`` are not its own), and for a voice the layout adds, an empty track of the file named
    for that voice (a placeholder "Tenor": its notes go there, not onto a second Tenor track)."""
    parts = enc.parts()
    if parts is None:
        return {}
    read = part_tracks(source, parts.max_parts, parts.drop_extra)[0]
    places = lay.place_of(len(read))
    own = {int(places[k]): i for k, i in enumerate(read) if k < places.size and places[k] >= 0}
    empty: dict[int, int] = {}
    for i, t in enumerate(source.tracks):
        if not t.is_drum and not len(t.notes):
            empty.setdefault(voice_role(t.name), i)
    own.update({p: empty[p] for p in lay.added.tolist() if p in empty})
    return own


@dataclass
class InputEdit:
    """How a result maps onto the input: each track's part in the piece the model read (-1: a track it does not
    read, kept as it is: drums, parts beyond its ``max_parts``, an instrument the layout left out), and the voices
    the model writes that the input lacks (``Layout.added``), each with its place in the track order and whether
    the result keeps it (asked for)."""

    part: np.ndarray
    has_parts: bool = False  # a parts model (else one stream of every pitched track: part 0)
    own: dict[int, int] = field(default_factory=dict)  # each part's own track (``own_tracks``)
    added: list[int] = field(default_factory=list)
    added_index: list[float] = field(default_factory=list)
    added_kept: list[bool] = field(default_factory=list)

    @classmethod
    def of(cls, enc: Encoding, source: symusic.Score, lay: Layout, dropped: np.ndarray) -> InputEdit:
        part = track_places(enc, source, lay)
        if enc.parts() is None:
            return cls(part)
        own = own_tracks(enc, source, lay)
        read = sorted({int(p) for p in part if p >= 0})
        index = [float(own.get(p, np.flatnonzero(part == p)[0])) for p in read]
        added = sorted(p for p in lay.added.tolist() if p not in own)  # those with no track of the file's
        out = []
        for p in added:  # each before the input's next part, in part order
            k = int(np.searchsorted(read, p))
            out.append(between(index, k))
            read.insert(k, p)
            index.insert(k, out[-1])
        return cls(part, True, own, added, out, [p not in set(dropped.tolist()) for p in added])

    def unseen(self, source: symusic.Score) -> list[str]:
        """The names of the tracks with notes the model did not read (copied as they are)."""
        return [t.name.strip() or "(unnamed)" for t, p in zip(source.tracks, self.part, strict=True)
                if p < 0 and len(t.notes)]

    def apply(self, source: symusic.Score, q: dict[str, Any], span: tuple[int, int], free: list[int] | None,
              shift: int, resolution: int, max_dur: int, lines: list[int] | None = None) -> tuple[symusic.Score, int]:
        """The input with the span's notes of the rewritten parts (``free``; None or []: every part) replaced by
        ``q``'s (the merged result, steps of ``resolution`` per beat, ``shift`` from the input's); the score and
        how many notes came from the fill. ``lines``: the parts written one note at a time (``cut_span``)."""
        out = source.copy()
        tpq = out.ticks_per_quarter
        s, e = span
        parts = q.get("part", np.zeros(q["onset"].size, np.int64))
        new = (q["onset"] >= s) & (q["onset"] < e) & (np.isin(parts, free) if free else True)
        rewritten = np.unique(self.part[self.part >= 0]) if not free else np.asarray(free)
        ticks = lambda steps: np.rint(steps * tpq / resolution).astype(np.int64)  # noqa: E731
        on, dur = ticks(q["onset"][new] - shift), np.maximum(ticks(q["duration"][new]), 1)
        pitch, part = q["pitch"][new], parts[new]
        removed = {}  # track -> the notes the fill replaces (pitch, velocity)
        for i, track in enumerate(out.tracks):
            p = self.part[i]
            if p < 0 or p not in rewritten or not len(track.notes):
                continue
            line = lines is not None and p in lines
            until = (int(on[part == p].min()) if (part == p).any() else None) if line else -1
            track.notes, removed[i] = cut_span(track.notes.numpy(), tpq, resolution, shift, s, e, max_dur, until)
        target = self.targets(out, removed, pitch, part)
        played = [t.notes.numpy()["velocity"] for t, p in zip(source.tracks, self.part, strict=True) if p >= 0]
        everyone = np.concatenate(played) if played else np.zeros(0, np.int64)  # a voice the input lacks: theirs
        extra: dict[int, symusic.Track] = {}
        for p, kept in zip(self.added, self.added_kept, strict=True):
            if kept or (part == p).any():
                extra[p] = symusic.Track(VOICES[p], self.neighbour_program(out, p))
        for t in np.unique(target).tolist():
            pick = target == t
            track = out.tracks[t] if t >= 0 else extra[-t - 1]
            vel = removed.get(t, (None, None))[1]
            mine = track.notes.numpy()["velocity"]
            velocity = velocity_of(vel if vel is not None and vel.size else mine if mine.size else everyone)
            add_notes(track, on[pick], dur[pick], pitch[pick], velocity)
        with_fermatas(out, q, s, e, shift, resolution)
        order = [(float(i), t) for i, t in enumerate(out.tracks)]
        order += [(x, extra[p]) for p, x in zip(self.added, self.added_index, strict=True) if p in extra]
        out.tracks = [t for _, t in sorted(order, key=lambda it: it[0])]
        return out, int(new.sum())

    def targets(self, out: symusic.Score, removed: dict[int, tuple[np.ndarray, np.ndarray]], pitch: np.ndarray,
                part: np.ndarray) -> np.ndarray:
        """The track each new note goes to (``-p - 1``: the new track of an added voice ``p``). A part's own first
        track; an encoding of one stream (no parts) has each note go to the track, of those the fill rewrote notes
        of (else of every track it reads), whose notes there lie nearest in median pitch (a piano's two hands)."""
        target = np.empty(pitch.size, np.int64)
        for p in np.unique(part).tolist():
            tracks = np.flatnonzero(self.part == p)
            if self.has_parts:
                target[part == p] = self.own.get(p, tracks[0] if tracks.size else -p - 1)
                continue
            if not tracks.size:
                target[part == p] = -p - 1
                continue
            replaced = [int(t) for t in tracks if int(t) in removed and removed[int(t)][0].size]
            cand = replaced or tracks.tolist()
            mid = np.array([np.median(removed[t][0] if t in replaced else out.tracks[t].notes.numpy()["pitch"])
                            for t in cand])
            sel = part == p
            target[sel] = np.asarray(cand)[np.abs(pitch[sel][:, None] - mid[None, :]).argmin(1)]
        return target

    def neighbour_program(self, out: symusic.Score, p: int) -> int:
        """An added voice sounds as the voices beside it do (the nearest part's program, a choir's for chorales)."""
        read = np.flatnonzero(self.part >= 0)
        if not read.size:
            return 0
        near = read[np.argmin(np.abs(self.part[read] - p))]
        return int(out.tracks[int(near)].program)


def cut_span(notes: Any, tpq: int, resolution: int, shift: int, s: int, e: int, max_dur: int,
             until: int | None = -1) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
    """A rewritten track without its notes whose onset step falls in [s, e), and those notes' pitches and
    velocities. A note held into the span keeps its full length (a 10-beat pedal point was cut to the 8 beats a DUR
    holds), except in a part written one note at a time: there it ends by the part's first new note (``until``,
    ticks; None: the fill wrote none), never before the end the tokens read (``max_dur`` steps, at least ``s``),
    which the fill was written against. ``until`` -1: a part of chords, whose fill may sound over it."""
    scale = resolution / tpq
    step = np.rint(notes["time"] * scale).astype(np.int64) + shift
    end = np.rint((notes["time"] + notes["duration"]) * scale).astype(np.int64) + shift
    inside = (step >= s) & (step < e)
    dur = notes["duration"].astype(np.int64).copy()
    over = (step < s) & (end > s) & (end - step > max_dur) & (until is not None and until >= 0)
    if over.any():
        read = np.rint((np.maximum(step + max_dur, s) - shift) / scale).astype(np.int64)  # the end the tokens read
        stop = np.maximum(np.minimum(notes["time"] + dur, until), read)
        dur[over] = np.maximum(stop[over] - notes["time"][over], 1)
    keep = ~inside
    kept = symusic.Note.from_numpy(time=notes["time"][keep], duration=dur[keep].astype(np.int32),
                                   pitch=notes["pitch"][keep], velocity=notes["velocity"][keep])
    return kept, (notes["pitch"][inside].astype(np.int64), notes["velocity"][inside].astype(np.int64))


def velocity_of(velocities: np.ndarray) -> int:
    """The velocity of new notes: the median of the notes they replace (else of their track's)."""
    return int(np.clip(np.median(velocities), 1, 127)) if velocities.size else DEFAULT_VELOCITY


def add_notes(track: symusic.Track, on: np.ndarray, dur: np.ndarray, pitch: np.ndarray, velocity: int) -> None:
    """``track`` with these notes added, in time order."""
    a = track.notes.numpy()
    time = np.r_[a["time"].astype(np.int64), on]
    order = np.argsort(time, kind="stable")
    track.notes = symusic.Note.from_numpy(
        time=time[order].astype(np.int32), duration=np.r_[a["duration"].astype(np.int64), dur][order].astype(np.int32),
        pitch=np.r_[a["pitch"].astype(np.int64), pitch][order].astype(np.int8),
        velocity=np.r_[a["velocity"].astype(np.int64), np.full(on.size, velocity)][order].astype(np.int8))


def with_fermatas(out: symusic.Score, q: dict[str, Any], s: int, e: int, shift: int, resolution: int) -> None:
    """The span's fermatas are the fill's: the input's fermata markers there out, the model's phrase ends in."""
    tpq = out.ticks_per_quarter
    step = lambda t: int(np.rint(t * resolution / tpq)) + shift  # noqa: E731
    keep = [m for m in out.markers if "fermata" not in m.text.lower() or not s <= step(m.time) < e]
    ends = np.asarray(q.get("phrase_step", np.zeros(0, np.int64)))
    ends = ends[(ends >= s) & (ends < e)]
    new = [symusic.TextMeta(int(np.rint((t - shift) * tpq / resolution)), "fermata") for t in ends.tolist()]
    out.markers = sorted(keep + new, key=lambda m: m.time)
