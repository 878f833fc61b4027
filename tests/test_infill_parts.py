"""`musesynth infill --parts A,T --bars 2-3`: only the chosen voices in the chosen bars are the model's; every other
note (the kept voices inside the bars too) is the input file's own, on its own track."""

from __future__ import annotations

import json

import numpy as np
import pytest
import symusic

from musesynth.cli import main
from musesynth.generate.voices import most_sounding


def rows(score: symusic.Score, track: symusic.Track) -> np.ndarray:
    n = track.notes.numpy()
    tpq = score.ticks_per_quarter
    r = np.stack([n["time"] / tpq, n["duration"] / tpq, n["pitch"], n["velocity"]], 1)
    return r[np.lexsort((r[:, 2], r[:, 0]))]


def outside(r: np.ndarray, s: float, e: float) -> np.ndarray:
    return r[(r[:, 0] < s - 1e-9) | (r[:, 0] >= e - 1e-9)]


@pytest.mark.parametrize("parts, free, extra", [("A,T", ("Alto", "Tenor"), []), ("bass", ("Bass",), []),
                                                ("1,3", ("Soprano", "Tenor"), []),
                                                ("A,T", ("Alto", "Tenor"), ["--particles", "3"])],
                         ids=["A,T", "bass", "1,3", "A,T-particles"])
def test_only_the_chosen_voices_in_the_chosen_bars_change(parts, free, extra, parts_run, bach_dir, tmp_path):
    src = sorted(bach_dir.rglob("*.mid"))[4]
    out = tmp_path / "out"
    assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "2-3", "--parts", parts,
                 "--num-samples", "2", "-s", "3", "--no-wav", "--no-png", "-o", str(out), "-q", *extra]) == 0
    given = symusic.Score(str(src))
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == 2
    for mid in mids:
        info = json.loads(mid.with_suffix(".json").read_text())
        assert info["parts"] == list(free)
        s, e = info["span_beats"]
        made = symusic.Score(str(mid))
        assert [t.name for t in made.tracks] == [t.name for t in given.tracks]  # the empty Soprano with the text
        for g, m in zip(given.tracks, made.tracks, strict=True):
            if not g.note_num():
                assert [x.text for x in m.lyrics] == [x.text for x in g.lyrics] and not m.note_num()
                continue
            want, got = rows(given, g), rows(made, m)
            if m.name not in free:
                assert np.array_equal(got, want)  # a kept voice: every note, inside the bars too
                continue
            assert np.array_equal(outside(got, s, e), outside(want, s, e))
            inside = got[(got[:, 0] >= s - 1e-9) & (got[:, 0] < e - 1e-9)]
            assert (inside[:, 0] + inside[:, 1] <= e + 1e-9).all()  # no new note lasts past the bars
            n = m.notes.numpy()
            assert most_sounding(n["time"], n["duration"]) <= 1  # a rewritten part is one voice
        assert info["new_notes"] == sum(
            int(((r := rows(made, t))[:, 0] >= s - 1e-9).sum() - (r[:, 0] >= e - 1e-9).sum())
            for t in made.tracks if t.name in free)


def test_a_kept_note_longer_than_a_dur_token_keeps_its_length(parts_run, bach_dir, tmp_path):
    """A chorale's final note held 16 beats (as in bwv10.7) reads as 8 through the tokens (max_duration_beats):
    kept, it comes out 16 beats long, in a rewrite of other voices and in a plain fill of earlier bars."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[4]))
    tpq, soprano = score.ticks_per_quarter, score.tracks[0]
    if not len(soprano.notes):
        soprano = score.tracks[1]
    last = max(soprano.notes, key=lambda n: n.time)
    last.duration = 16 * tpq
    src = tmp_path / "long_end.mid"
    score.dump_midi(str(src))
    for extra in (["--parts", "A,T,B"], []):
        out = tmp_path / f"out{len(extra)}"
        assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "2-3", "-s", "1", "--no-wav",
                     "--no-png", "-o", str(out), "-q", *extra]) == 0
        made = symusic.Score(str(next(out.glob("*.mid"))))
        q = made.ticks_per_quarter
        longest = max(n.duration for t in made.tracks for n in t.notes)
        assert longest / q == 16
        assert any(n.pitch == last.pitch and n.duration / q == 16 for n in made.tracks[0].notes)


def test_a_long_note_held_into_the_bars_keeps_its_length_when_its_voice_is_rewritten_too(parts_run, bach_dir,
                                                                                        tmp_path):
    """A bass note of 16 beats from the first beat, the bars 2-3 rewritten: kept whole when the bass is kept, and
    when the bass is rewritten too (it starts outside the bars: the user's; before, it was cut to the 8 beats a DUR
    holds and the fill wrote the bass after that, a pedal point of 10 beats cut to 8: fuzzing helper). The voice
    waits for it to end: no bass note starts under it."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[4]))
    tpq = score.ticks_per_quarter
    bass = next(t for t in score.tracks if t.name == "Bass")
    first = min(n.time for n in bass.notes)
    long_note = symusic.Note(first, 16 * tpq, 48, 80)
    kept = [n for n in bass.notes if n.time >= first + 16 * tpq]
    bass.notes = symusic.Note.from_numpy(time=np.array([first] + [n.time for n in kept]),
                                         duration=np.array([16 * tpq] + [n.duration for n in kept]),
                                         pitch=np.array([long_note.pitch] + [n.pitch for n in kept]),
                                         velocity=np.full(len(kept) + 1, 80))
    src = tmp_path / "long_bass.mid"
    score.dump_midi(str(src))
    for parts, beats in (("S,A", 16), ("T,B", 16), ("B", 16)):
        out = tmp_path / parts.replace(",", "")
        assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "2-3", "--parts", parts,
                     "-s", "1", "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
        made = symusic.Score(str(next(out.glob("*.mid"))))
        q = made.ticks_per_quarter
        b = next(t for t in made.tracks if t.name == "Bass")
        start = min(n.time for n in b.notes)
        assert [n.duration / q for n in b.notes if n.time == start and n.pitch == 48] == [beats]
        assert all(n.time >= start + 16 * q or n.time == start for n in b.notes)


def test_every_voice_named_is_a_plain_fill(parts_run, bach_dir, tmp_path):
    src = sorted(bach_dir.rglob("*.mid"))[5]
    assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "2", "--parts", "S,A,T,B",
                 "--no-wav", "--no-png", "-o", str(tmp_path), "-q"]) == 0
    info = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert info["parts"] == [] and info["bars"] == "2-2"


@pytest.mark.parametrize("args, message", [
    (["--parts", "X"], "--parts 'X': the piece has no such part"),
    (["--parts", "5"], "--parts '5': the piece has no such part"),
    (["--parts", ","], "--parts names no part"),
    (["--parts", "A", "--particles", "0"], "--particles must be 1-64"),
    (["--particles", "2"], "--particles weighs a fill by the kept parts' notes in the bars: give --parts"),
])
def test_bad_parts_are_one_line(args, message, parts_run, bach_dir, tmp_path, capsys):
    src = sorted(bach_dir.rglob("*.mid"))[4]
    out = tmp_path / "out"
    assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "2", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_parts_need_a_model_that_knows_them(bach_dir, tmp_path, capsys):
    # the shipped meter model has no infill tokens: refused before --parts is even read; a meter model with
    # them is refused for --parts (see test_infill's meter runs); here: the message for a model without parts
    from musesynth.errors import MusesynthError
    from musesynth.generate.infill import InfillOptions, run_infill

    opt = InfillOptions(checkpoint="musesynth/pretrained/bach", input=str(sorted(bach_dir.rglob("*.mid"))[4]),
                        bars="2", parts="A", out_dir=str(tmp_path))
    with pytest.raises(MusesynthError, match="not trained for infilling"):
        run_infill(opt)


def test_the_api_rewrites_bars_in_memory_from_a_file_or_a_score(parts_run, bach_dir, tmp_path):
    import musesynth
    from musesynth.errors import MusesynthError

    src = sorted(bach_dir.rglob("*.mid"))[4]
    made = musesynth.infill(src, "2-3", parts="A,T", model=str(parts_run), seed=5, num_samples=2, top_k=20)
    again = musesynth.infill(symusic.Score(str(src)), "2-3", parts="A,T", seed=5, num_samples=2, top_k=20,
                             model=musesynth.load_model(parts_run, "cpu"))
    given = symusic.Score(str(src))
    for r, g in zip(made, again, strict=True):
        assert isinstance(r, musesynth.Infilling) and np.array_equal(r.tokens, g.tokens)
        assert r.info["parts"] == ["Alto", "Tenor"] and r.info["sampling"]["seed"] == 5
        assert np.array_equal(rows(r.score, r.score.tracks[0]), rows(given, given.tracks[0]))  # the soprano kept
    path = made[0].save(tmp_path / "new.mid")
    with pytest.raises(MusesynthError, match="exists"):
        made[1].save(path)
    assert list(tmp_path.iterdir()) == [path]  # nothing else written
    assert made[0].info["input"] == str(src) and again[0].info["input"] == "<symusic.Score>"
    with pytest.raises(MusesynthError, match="bars"):
        musesynth.infill(src, "9-2", model=str(parts_run))
    with pytest.raises(MusesynthError, match="model: give a loaded Model"):
        musesynth.infill(src, "2", model=3)


def test_a_note_of_ten_beats_held_into_a_plain_fill_keeps_its_length(parts_run, bach_dir, tmp_path):
    """A soprano note of 10 beats sounding into the rewritten bars (a plain fill, every voice rewritten) came out 8
    beats long, the fill's next soprano note at its eighth beat; it keeps its 10 now, and the soprano waits."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[4]))
    tpq = score.ticks_per_quarter
    soprano = next(t for t in score.tracks if t.name == "Soprano" and t.note_num())
    first = min(n.time for n in soprano.notes)
    held = [n for n in soprano.notes if not first + 2 * tpq <= n.time < first + 12 * tpq]
    soprano.notes = [n.copy() for n in held] + [symusic.Note(first + 2 * tpq, 10 * tpq, 67, 80)]
    soprano.notes.sort(key=lambda n: n.time)
    for n in soprano.notes:  # nothing still sounding under it
        if n.time < first + 2 * tpq:
            n.duration = min(n.duration, first + 2 * tpq - n.time)
    src = tmp_path / "held.mid"
    score.dump_midi(str(src))
    assert main(["infill", "-c", str(parts_run), "--input", str(src), "--bars", "3-4", "-s", "1", "--no-wav",
                 "--no-png", "-o", str(tmp_path / "out"), "-q"]) == 0
    made = symusic.Score(str(next((tmp_path / "out").glob("*.mid"))))
    s = next(t for t in made.tracks if t.name == "Soprano" and t.note_num())
    q = made.ticks_per_quarter
    long = [n for n in s.notes if n.pitch == 67 and n.duration / q == 10]
    assert long and not any(long[0].time < n.time < long[0].time + 10 * q for n in s.notes)

