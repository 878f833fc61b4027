"""`musesynth harmonize`: every melody note comes out exactly, at most the asked-for number of voices sound at once,
one named track per voice; bad input is one line. One tiny parts model (conftest's ``parts_run``) serves all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import symusic

from musesynth.cli import main
from musesynth.data.dataset import load_pieces
from musesynth.data.melody_first import MelodyFirst, melody_only, melody_prompt
from musesynth.generate.voices import most_sounding
from musesynth.tokenize import encoding_from_vocab, get_encoding
from tests.conftest import make_score


def beats(score: symusic.Score, track: symusic.Track) -> np.ndarray:
    """(onset, duration, pitch) rows, times in beats, so files of different resolutions compare exactly."""
    n = track.notes.numpy()
    rows = np.stack([n["time"] / score.ticks_per_quarter, n["duration"] / score.ticks_per_quarter, n["pitch"]], 1)
    return rows[np.lexsort((rows[:, 2], rows[:, 0]))]


def soprano_alone(src: Path, dst: Path, name: str) -> Path:
    """A one-track file: the chorale's soprano (its meter and tempo kept), under another track name."""
    score = symusic.Score(str(src))
    track = next(t for t in score.tracks if t.name == "Soprano" and t.note_num()).copy()
    track.name = name
    score.tracks = [track]
    score.dump_midi(str(dst))
    return dst


@pytest.mark.parametrize("case", ["by-name", "one-track", "by-index-two-voices", "opening-rest"])
def test_every_melody_note_comes_out_exactly_under_at_most_n_voices(case, parts_run, bach_dir, tmp_path, capsys):
    pieces = sorted(bach_dir.rglob("*.mid"))
    if case == "by-name":
        melody, extra, voices = pieces[0], ["--part", "soprano"], ("Soprano", "Alto", "Tenor", "Bass")
    elif case == "one-track":
        melody, extra, voices = soprano_alone(pieces[1], tmp_path / "tune.mid", "Melody"), [], \
            ("Soprano", "Alto", "Tenor", "Bass")
    elif case == "opening-rest":  # a rest opening a full bar: decoding drops it, harmonize must not
        tune = [67, 69, 71, 72, 71, 69, 67, 66, 67, 74, 72, 71]
        melody, extra, voices = write(tmp_path, [(480 * (i + 1), 480, p) for i, p in enumerate(tune)]), [], \
            ("Soprano", "Alto", "Tenor", "Bass")
    else:
        names = [t.name for t in symusic.Score(str(pieces[2])).tracks]
        index = next(i for i, n in enumerate(names) if n == "Soprano" and symusic.Score(str(pieces[2])).tracks[i]
                     .note_num())
        melody, extra, voices = pieces[2], ["--part", str(index), "--voices", "B"], ("Soprano", "Bass")
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), *extra, "--num-samples", "2", "-s", "4",
                 "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    given = symusic.Score(str(melody))
    want = beats(given, next(t for t in given.tracks if t.name in ("Soprano", "Melody", "t") and t.note_num()))
    mids = sorted(out.glob("*.mid"))
    assert len(mids) == 2
    for mid in mids:
        score = symusic.Score(str(mid))
        assert tuple(t.name for t in score.tracks) == voices
        assert np.array_equal(beats(score, score.tracks[0]), want)  # 100% of the melody's notes, exactly
        ticks = np.concatenate([t.notes.numpy()["time"] for t in score.tracks]), \
            np.concatenate([t.notes.numpy()["duration"] for t in score.tracks])
        assert most_sounding(*ticks) <= len(voices)
        assert sum(t.note_num() for t in score.tracks[1:]) > 0  # the model wrote the other voices
        info = json.loads(mid.with_suffix(".json").read_text())
        assert info["melody_notes"] == want.shape[0] and info["most_sounding"] <= len(voices)


def test_a_bass_line_is_harmonised_as_the_bass_unless_told_otherwise(parts_run, bach_dir, tmp_path, capsys):
    """A chorale's bass on a track named "Bassoon": before, any track not named for a voice was the Soprano, so the
    voices were written 17 semitones up as a chorale and moved back down under it (a bass at MIDI 17, reported by
    the fuzzing helper). Its median lies as low as a bass sings, so it is the Bass and the voices are written
    above it, every note of it as given; ``--melody-voice S`` makes it the Soprano; a voice that is none is one
    line."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[1]))
    bass = next(t for t in score.tracks if t.name == "Bass").copy()
    bass.name, bass.program = "Bassoon", 70
    score.tracks = [bass]
    melody = tmp_path / "bassoon.mid"
    score.dump_midi(str(melody))
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "-s", "2", "--no-wav", "--no-png",
                 "-o", str(out)]) == 0
    assert "so it is the Bass (--melody-voice S" in capsys.readouterr().out
    made = symusic.Score(str(next(out.glob("*.mid"))))
    assert [t.name for t in made.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert np.array_equal(beats(made, made.tracks[3]), beats(score, bass))
    info = json.loads(next(out.glob("*.json")).read_text())
    assert info["melody_voice"] == "Bass" and info["melody_voice_from"] == "register" and info["melody_shift"] == 0
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--melody-voice", "soprano", "-s", "2",
                 "--no-wav", "--no-png", "-o", str(tmp_path / "top"), "-q"]) == 0
    info = json.loads(next((tmp_path / "top").glob("*.json")).read_text())
    assert info["melody_voice"] == "Soprano" and info["melody_voice_from"] == "option"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--melody-voice", "X",
                 "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--melody-voice 'X' is no voice" in err and err.count("\n") == 1


def test_the_melody_keeps_its_tracks_program(parts_run, bach_dir, tmp_path):
    """A melody on a violin track (program 40) is harmonised: the melody's track keeps program 40 (before, every
    track came out program 0, so a DAW played the violin line on a piano)."""
    import musesynth

    melody = soprano_alone(sorted(bach_dir.rglob("*.mid"))[1], tmp_path / "violin.mid", "Violin I")
    score = symusic.Score(str(melody))
    score.tracks[0].program = 40
    score.dump_midi(str(melody))
    made = musesynth.harmonize(melody, model=str(parts_run), seed=0, particles=1)[0]
    assert [(t.name, t.program) for t in made.score.tracks] == [("Soprano", 40), ("Alto", 0), ("Tenor", 0),
                                                                ("Bass", 0)]


def test_written_voices_stay_within_their_ranges(parts_run, bach_dir):
    """Each voice is written within its SATB range widened by 3 semitones (the masks of ``VoiceConstraint``): a
    tenor at MIDI 112 and a bass at 17 came out under melodies no chorale has. Sampled hot, the tiny model's
    voices would go anywhere."""
    import musesynth
    from musesynth.generate.voices import sung_pitches

    assert [(int(p.min()), int(p.max())) for p in map(sung_pitches, range(4))] == [(57, 84), (50, 77), (45, 72),
                                                                                   (35, 65)]
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    for made in musesynth.harmonize(piece, part="Soprano", model=str(parts_run), seed=0, num_samples=4,
                                    particles=1, temperature=3.0, top_k=0):
        assert made.info["melody_shift"] == 0
        for v, track in enumerate(made.score.tracks[1:], start=1):
            pitch = track.notes.numpy()["pitch"]
            assert pitch.size and np.isin(pitch, sung_pitches(v)).all(), (track.name, pitch.min(), pitch.max())


def test_fewer_voices_are_those_of_the_four_voice_harmonisation(parts_run, tmp_path):
    """A model of four parts learnt a part's register from its place in the header: laid out as Soprano and Bass
    alone, the shipped model's bass sang in the alto's register. So it always writes all four voices and keeps the
    asked-for ones: with one seed, ``--voices B`` and ``--voices A,B`` give the default harmonisation's own bass."""
    import musesynth

    melody = write(tmp_path, [(480 * i, 480, p) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69, 67])])
    model = musesynth.load_model(parts_run, "cpu")
    full = musesynth.harmonize(melody, model=model, seed=5, particles=1)[0].score
    for voices, names in (("B", ["Soprano", "Bass"]), ("A,B", ["Soprano", "Alto", "Bass"])):
        some = musesynth.harmonize(melody, model=model, voices=voices, seed=5, particles=1)[0]
        assert [t.name for t in some.score.tracks] == names
        for track in some.score.tracks:
            same = next(t for t in full.tracks if t.name == track.name)
            assert track.notes.numpy()["pitch"].tolist() == same.notes.numpy()["pitch"].tolist(), (voices, track.name)
            assert track.notes.numpy()["time"].tolist() == same.notes.numpy()["time"].tolist()
        assert some.info["voices"] == names[1:] and some.info["empty_voices"] == []


def test_a_named_voice_is_kept_the_others_written_in_the_key_asked_for(parts_run, bach_dir, tmp_path):
    piece = sorted(bach_dir.rglob("*.mid"))[3]
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(piece), "--part", "Tenor", "--voices", "S,B",
                 "--key", "Bb major", "--no-wav", "--no-png", "-o", str(tmp_path), "-q"]) == 0
    mid = next(tmp_path.glob("*.mid"))
    assert json.loads(mid.with_suffix(".json").read_text())["key"] == "Bb major"
    score = symusic.Score(str(mid))
    given = symusic.Score(str(piece))
    assert tuple(t.name for t in score.tracks) == ("Soprano", "Tenor", "Bass")
    tenor = next(t for t in given.tracks if t.name == "Tenor")
    assert np.array_equal(beats(score, score.tracks[1]), beats(given, tenor))


def write(tmp_path: Path, notes: list[tuple[int, int, int]], name: str = "m.mid") -> Path:
    make_score(notes).dump_midi(str(tmp_path / name))
    return tmp_path / name


@pytest.mark.parametrize("make, extra, message", [
    (lambda d: write(d, [(0, 480, 67), (0, 480, 72), (480, 480, 71)]), [], "chords or overlapping notes"),
    (lambda d: write(d, [(0, 960, 67), (480, 480, 72)]), [], "chords or overlapping notes"),
    (lambda d: write(d, []), [], "has no notes"),
    (lambda d: write(d, [(0, 480, 67)]), ["--part", "Alto"], "--part 'Alto': unknown part"),
    (lambda d: write(d, [(0, 480, 67)]), ["--part", "3"], "--part 3: unknown part"),
    (lambda d: write(d, [(0, 480, 67), (480, 480, 96)]), ["--transpose", "0"], "outside what any voice sings"),
    (lambda d: write(d, [(0, 480, 30), (480, 480, 40)]), ["--transpose", "0"], "--transpose auto moves it into"),
    (lambda d: write(d, [(0, 480, 67)]), ["--transpose", "20"], "(moved +20 by --transpose: 87-87)"),
    (lambda d: write(d, [(0, 480, 30), (480, 480, 96)]), [], "66 semitones: wider than all voices together sing"),
    (lambda d: write(d, [(0, 480, 67)]), ["--transpose", "up"], "--transpose must be auto or a whole number"),
    (lambda d: write(d, [(0, 480, 67)]), ["--transpose", "300"], "--transpose must be auto or a whole number"),
    (lambda d: write(d, [(0, 480, 67)]), ["--voices", "S,A"], "the melody's own voice"),
    (lambda d: write(d, [(0, 480, 67)]), ["--voices", "X"], "--voices 'X': unknown voice"),
    (lambda d: d / "missing.mid", [], "--melody not found"),
    (lambda d: (d / "folder.mid").mkdir() or d / "folder.mid", [], "folder.mid is a folder, not a MIDI file"),
    (lambda d: write(d, [(480 * i, 480, 67) for i in range(5001)]), [], "harmonize takes at most 5,000"),
    (lambda d: write(d, [(0, 480, 67)]), ["--key", "H major"], "unknown key 'H major'"),
    (lambda d: write(d, [(0, 480, 5)]), ["--transpose", "0"], "spans MIDI pitches 5-5"),  # as in the file
    (lambda d: write(d, [(0, 480, 67), (480, 0, 69)]), [], "1 note(s) of no length (first at beat 1)"),
    (lambda d: write(d, [(0, 0, 67), (480, 0, 69)]), ["--top-line"], "has no notes of any length"),
    (lambda d: write(d, [(0, 10, 67), (10, 10, 69), (20, 480, 71)]), [], "closer together than the model's grid"),
    (lambda d: write(d, [(0, 480, 67), (480 * 100, 480, 69)]), [], "99 beats in which no note starts or ends"),
    (lambda d: write(d, [(0, 480 * 70, 67), (480 * 70, 480, 69)]), [], "70 beats in which no note starts or ends"),
    (lambda d: write(d, [(480 * 80, 480, 67)]), [], "starts after 80 beats of silence"),
    (lambda d: write(d, [(2**31 - 1000, 480, 67)]), [], "beats of silence"),
])
def test_bad_input_is_one_line(make, extra, message, parts_run, tmp_path, capsys):
    melody = make(tmp_path)
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), *extra, "--no-wav", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_melody_notes_off_the_grid_are_named_and_the_others_kept(parts_run, tmp_path, capsys):
    """A note between grid steps (a 32nd note: 1.5 steps of 1/12 beat) cannot come out exactly: it is moved, said so,
    counted in the JSON; every note on the grid comes out exactly."""
    notes = [(480 * i, 480, p) for i, p in enumerate([67, 69, 71, 72])] + [(1920, 60, 74), (1980, 420, 72)]
    melody = write(tmp_path, notes)
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", "0",
                 "-o", str(tmp_path / "out")]) == 0
    assert "2 melody note(s) start or end between the model's grid steps (first at beat 4)" in capsys.readouterr().out
    info = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert info["melody_off_grid"] == 2 and info["melody_off_grid_first_beat"] == 4
    out = symusic.Score(str(next((tmp_path / "out").glob("*.mid"))))
    q = out.ticks_per_quarter
    got = {(n.time / q, n.duration / q, n.pitch) for n in out.tracks[0].notes}
    assert {(t / 480, d / 480, p) for t, d, p in notes[:4]} <= got


def test_a_file_coarser_than_the_grid_counts_its_moved_notes():
    """10 ticks per beat: a note at 0.3 beats moves to 1/3 (the grid's nearest), which the old tolerance of half a
    file tick (0.6 of a step there) never counted (the fuzzing helper: 16 notes moved, 0 reported)."""
    from musesynth.generate.harmonize import off_grid
    from musesynth.tokenize.midi_io import Notes

    def notes(onset: list[int], dur: list[int], tpq: int) -> Notes:
        z, n = np.zeros(0, np.int64), len(onset)
        return Notes(np.array(onset), np.array(dur), np.full(n, 60), np.full(n, 80), z, z.astype(float), tpq)

    assert off_grid(notes([0, 3, 7, 10], [3, 4, 3, 10], 10), 12) == (3, 0.0)  # ends at 0.3, 0.7 and starts too
    assert off_grid(notes([0, 5, 10], [5, 5, 10], 10), 12) == (0, 0.0)  # halves are on the grid
    assert off_grid(notes([0, 83, 167], [83, 84, 833], 1000), 12) == (0, 0.0)  # twelfths at 1000 per beat


def test_a_played_legato_is_cut_where_the_next_note_starts(parts_run, tmp_path, capsys):
    """Notes held an eighth of a beat into the next (a keyboard legato) are a melody, not chords: each is cut where
    the next starts, and said so; a note held a whole beat into the next is still refused (two lines)."""
    pitches = [67, 69, 71, 72, 74, 72]
    melody = write(tmp_path, [(480 * i, 540, p) for i, p in enumerate(pitches)])
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", "0",
                 "-o", str(tmp_path / "out")]) == 0
    assert "5 melody note(s) sounded on into the next (legato" in capsys.readouterr().out
    out = symusic.Score(str(next((tmp_path / "out").glob("*.mid"))))
    q = out.ticks_per_quarter
    got = [(n.time / q, n.duration / q, n.pitch) for n in out.tracks[0].notes]
    assert got[:5] == [(float(i), 1.0, p) for i, p in enumerate(pitches[:5])]
    assert json.loads(next((tmp_path / "out").glob("*.json")).read_text())["melody_legato_cut"] == 5


def test_a_missing_soundfont_is_refused_before_any_work(parts_run, tmp_path, capsys):
    """An explicit --soundfont is never silently replaced by another one (as generate and infill refuse it)."""
    melody, out = write(tmp_path, [(0, 480, 67), (480, 480, 69)]), tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--soundfont", str(tmp_path / "no.sf2"),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"soundfont not found: {tmp_path / 'no.sf2'}" in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_a_corpus_chorales_soprano_is_a_melody(parts_run, bach_dir, tmp_path, capsys):
    piece = sorted(bach_dir.rglob("*.mid"))[0]  # exported from the corpus as --chorale exports it
    assert main(["harmonize", "-c", str(parts_run), "--chorale", piece.stem, "--no-wav", "--no-png",
                 "-o", str(tmp_path), "-q"]) == 0
    mid = next(tmp_path.glob(f"{piece.stem}_harmonizedATB_*.mid"))
    score, given = symusic.Score(str(mid)), symusic.Score(str(piece))
    soprano = next(t for t in given.tracks if t.name == "Soprano" and t.note_num())
    assert tuple(t.name for t in score.tracks) == ("Soprano", "Alto", "Tenor", "Bass")
    assert np.array_equal(beats(score, score.tracks[0]), beats(given, soprano))
    assert main(["harmonize", "-c", str(parts_run), "--chorale", "bwv9999", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown chorale 'bwv9999'" in err and err.count("\n") == 1


def test_a_melody_of_several_tracks_asks_for_part_unless_one_is_the_soprano(parts_run, bach_dir, tmp_path, capsys):
    score = make_score([(0, 480, 72), (480, 480, 74)])
    second = score.tracks[0].copy()
    score.tracks[0].name, second.name = "Flute", "Oboe"
    score.tracks.append(second)
    score.dump_midi(str(tmp_path / "two.mid"))
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(tmp_path / "two.mid"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--part" in err and "Flute" in err and err.count("\n") == 1
    piece = sorted(bach_dir.rglob("*.mid"))[0]  # a choir score: its Soprano is the melody
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(piece), "--no-wav", "--no-png",
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    made, given = symusic.Score(str(next((tmp_path / "out").glob("*.mid")))), symusic.Score(str(piece))
    soprano = next(t for t in given.tracks if t.name == "Soprano" and t.note_num())
    assert np.array_equal(beats(made, made.tracks[0]), beats(given, soprano))


def test_a_model_without_parts_is_refused(tmp_path, capsys):
    melody = write(tmp_path, [(0, 480, 67), (480, 480, 72)])
    assert main(["harmonize", "-c", "musesynth/pretrained/bach", "--melody", str(melody), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not know parts" in err and err.count("\n") == 1


def test_melody_only_keeps_exactly_one_parts_notes(bach_dir):
    enc = get_encoding("parts")
    for path in sorted(bach_dir.rglob("*.mid"))[:4]:
        ids = enc.encode(symusic.Score(str(path)))
        q = enc.decode_quantized(ids)
        for part in range(4):
            m = enc.decode_quantized(melody_only(enc, ids, part))
            sel = q["part"] == part
            assert np.array_equal(m["part"], q["part"][sel])
            for k in ("onset", "pitch", "duration"):
                assert np.array_equal(m[k], q[k][sel])


def test_melody_first_windows_show_one_part_then_the_whole_piece(parts_run):
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    pieces = load_pieces(parts_run.parent / "ds", "train")
    tokens = np.concatenate(pieces).astype(np.int64)
    first = MelodyFirst(enc, rate=1.0)
    changed = 0
    for i, start in enumerate(np.r_[0, np.cumsum([p.size for p in pieces])[:-1]][:8]):
        w = tokens[max(int(start) - 40, 0) : int(start) + 300]
        out = first(w, np.random.default_rng(i))
        assert out.size == w.size
        if np.array_equal(out, w):
            continue
        changed += 1
        b = int(np.flatnonzero(out == enc.bos_id)[0])  # the piece's BOS: the melody before it has none
        piece = w[np.flatnonzero(w == enc.bos_id)[0] :]
        eos = np.flatnonzero(piece == enc.eos_id)
        whole = piece[: int(eos[0]) + 1] if eos.size else piece
        shown = [k for k in range(4) if np.array_equal(out[max(b - (m := melody_prompt(enc, whole, k)).size, 0) : b],
                                                        m[-b:] if m.size > b else m)]
        assert len(shown) >= 1 and out[b - 1] == enc.eos_id  # one part's melody, closed by EOS, no BOS of its own
        assert np.array_equal(out[b:], piece[: out.size - b])  # then the piece itself, as it was
    assert changed >= 6


def test_without_a_seed_each_run_draws_one_and_says_it(parts_run, tmp_path, capsys):
    melody = write(tmp_path, [(480 * i, 480, p) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])])
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png",
                 "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    seed = int(out.split("seed ")[-1].split()[0])
    assert f"(make these again with -s {seed})" in out
    made = next((tmp_path / "a").glob("*.mid"))
    assert f"_seed{seed}_0" in made.name
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", str(seed),
                 "-o", str(tmp_path / "b"), "-q"]) == 0
    assert next((tmp_path / "b").glob("*.mid")).read_bytes() == made.read_bytes()


def test_the_api_harmonizes_in_memory_with_a_path_or_a_loaded_model(parts_run, tmp_path):
    import musesynth
    from musesynth.errors import MusesynthError

    melody = write(tmp_path, [(480 * i, 480, p) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])])
    made = musesynth.harmonize(melody, model=str(parts_run), voices="A,B", seed=3, num_samples=2, top_k=20)
    assert len(made) == 2 and all(isinstance(h, musesynth.Harmonization) for h in made)
    again = musesynth.harmonize(melody, model=musesynth.load_model(parts_run, "cpu"), voices="A,B", seed=3,
                                num_samples=2, top_k=20)
    for h, g in zip(made, again, strict=True):
        assert [t.name for t in h.score.tracks] == ["Soprano", "Alto", "Bass"]
        assert [n.pitch for n in h.score.tracks[0].notes] == [67, 69, 71, 72, 74, 72, 71, 69]
        assert np.array_equal(h.tokens, g.tokens) and h.info["sampling"]["seed"] == 3
    path = made[0].save(tmp_path / "satb.mid")
    with pytest.raises(MusesynthError, match="exists"):
        made[1].save(path)
    assert symusic.Score(str(path)).tracks[2].name == "Bass"
    assert list(tmp_path.iterdir()) == sorted([melody, path]) or set(tmp_path.iterdir()) == {melody, path}


def test_particles_keep_every_melody_note_and_one_seed_gives_one_answer(parts_run, tmp_path):
    """``--particles 4`` with 2 samples: two populations of four, each giving one harmonisation with the melody
    exact; the same seed gives the same notes (resampling draws from the seed too)."""
    import musesynth

    tune = [67, 69, 71, 72, 74, 72, 71, 69, 67]
    melody = write(tmp_path, [(480 * i, 480, p) for i, p in enumerate(tune)])
    model = musesynth.load_model(parts_run, "cpu")
    made = musesynth.harmonize(melody, model=model, seed=5, num_samples=2, particles=4)
    again = musesynth.harmonize(melody, model=model, seed=5, num_samples=2, particles=4)
    assert len(made) == 2
    for h, g in zip(made, again, strict=True):
        assert [n.pitch for n in h.score.tracks[0].notes] == tune
        assert sum(t.note_num() for t in h.score.tracks[1:]) > 0
        assert np.array_equal(h.tokens, g.tokens)


def test_an_empty_output_folder_is_refused_not_read_as_the_current_one(parts_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    melody = write(tmp_path, [(0, 480, 67), (480, 480, 69)])
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "-o", ""]) == 2
    assert "-o/--out-dir is empty: name a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mid"]


def test_a_melody_above_the_soprano_is_harmonised_lower_and_moved_back_exactly(parts_run, tmp_path, capsys):
    """--transpose auto (the default): a fiddle tune up to D6 is written 5 semitones lower, where the soprano sings,
    and everything moves back up, so every melody note is as given; --transpose 0 refuses it in one line."""
    notes = [(480 * i, 480, p) for i, p in enumerate([74, 78, 81, 86, 83, 81, 78, 74])]
    melody = write(tmp_path, notes)
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", "0",
                 "-o", str(out)]) == 0
    assert "written 5 semitone(s) lower and moved back" in capsys.readouterr().out
    info = json.loads(next(out.glob("*.json")).read_text())
    assert info["melody_shift"] == -5
    score = symusic.Score(str(next(out.glob("*.mid"))))
    q = score.ticks_per_quarter
    assert sorted((n.time * 480 // q, n.duration * 480 // q, n.pitch) for n in score.tracks[0].notes) == notes
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--transpose", "0",
                 "-o", str(tmp_path / "no")]) == 2
    assert "outside what any voice sings" in capsys.readouterr().err


def test_top_line_takes_the_highest_note_of_a_melody_with_chords(parts_run, tmp_path, capsys):
    """--top-line: a note that starts with or under a higher one is dropped, a kept note held into the next is cut
    where it starts; both counted; every other melody note as given. Without it the melody is refused."""
    notes = [(0, 480, 67), (0, 480, 60), (0, 0, 79), (480, 960, 72), (720, 240, 64), (1440, 960, 71), (1920, 480, 74)]
    melody = write(tmp_path, notes)
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "-o", str(tmp_path / "r")
                 ]) == 2
    assert "(--top-line drops them)" in capsys.readouterr().err  # its note of no length is named first
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--top-line", "--no-wav", "--no-png",
                 "-s", "0", "-o", str(out)]) == 0
    assert "--top-line: 3 melody note(s) under a higher one dropped, 1 cut" in capsys.readouterr().out
    info = json.loads(next(out.glob("*.json")).read_text())  # the note of no length counts as dropped
    assert info["melody_top_line"] == {"dropped": 3, "cut": 1} and info["melody_notes"] == 4
    score = symusic.Score(str(next(out.glob("*.mid"))))
    q = score.ticks_per_quarter
    got = sorted((n.time * 480 // q, n.duration * 480 // q, n.pitch) for n in score.tracks[0].notes)
    assert got == [(0, 480, 67), (480, 960, 72), (1440, 480, 71), (1920, 480, 74)]


def test_a_moved_melody_keeps_the_key_it_has_unmoved_and_an_explicit_shift_is_said(parts_run, tmp_path, capsys):
    """The key is found where the file has it (its notes and key signature) and moved with the melody: the same
    tune an octave apart gets the same key, whether it is moved (--transpose auto) or not. An explicit --transpose
    moves an in-range melody too, and comes back exactly."""
    tune = [77, 81, 83, 72, 74, 81, 83, 74]
    keys = []
    for octave in (0, -12):
        score = make_score([(480 * i, 480, p + octave) for i, p in enumerate(tune)])
        score.key_signatures.append(symusic.KeySignature(0, 0, 0))
        melody = tmp_path / f"tune{octave}.mid"
        score.dump_midi(str(melody))
        out = tmp_path / f"out{octave}"
        assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", "0",
                     "-o", str(out), "-q"]) == 0
        info = json.loads(next(out.glob("*.json")).read_text())
        keys.append((info["key"], info["melody_shift"]))
    assert keys[0][0] == keys[1][0] and keys[0][1] == -2 and keys[1][1] == 0, keys
    notes = [(480 * i, 480, p - 12) for i, p in enumerate(tune)]
    melody = write(tmp_path, notes)
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--no-wav", "--no-png", "-s", "0",
                 "--transpose", "3", "-o", str(tmp_path / "three")]) == 0
    assert "--transpose 3: the voices were written 3 semitone(s) higher" in capsys.readouterr().out
    made = symusic.Score(str(next((tmp_path / "three").glob("*.mid"))))
    q = made.ticks_per_quarter
    assert sorted((n.time * 480 // q, n.duration * 480 // q, n.pitch) for n in made.tracks[0].notes) == notes


def test_moving_back_folds_a_voice_that_would_leave_midi_by_octaves():
    from musesynth.generate.harmonize import moved_back

    q = {"pitch": np.array([81, 84, 60]), "key": np.array([2, 0])}
    back = moved_back(q, -46)  # a melody at 127 written at 81: a voice crossing above it would be 130
    assert back["pitch"].tolist() == [127, 118, 106] and back["key"].tolist() == [0, 0]
    assert moved_back({"pitch": np.array([38, 70]), "key": None}, 40)["pitch"].tolist() == [10, 30]


def test_infill_keeps_the_tracks_the_model_does_not_read_and_the_inputs_track_names(parts_run, bach_dir, tmp_path,
                                                                                     capsys):
    """A model of four parts rewriting bars of a chorale with a horn and a violin (parts it drops): the result keeps
    them note for note on its time line (a pickup included) and the voices keep the input's track names; the
    summary names the tracks it copied, and the tracks stay in the input's order. Before, they were missing from the
    result."""
    satb = [p for p in sorted(bach_dir.rglob("*.mid"))
            if [t.name for t in symusic.Score(str(p)).tracks if t.note_num()] == ["Soprano", "Alto", "Tenor", "Bass"]]
    assert len(satb) >= 3
    for k, piece in enumerate(satb[:3]):
        score = symusic.Score(str(piece))
        tpq = score.ticks_per_quarter
        voices = [t for t in score.tracks if t.note_num()]
        horn, violin = voices[0].copy(), voices[-1].copy()
        horn.name, violin.name = "Horn", "Violin"
        horn.program, violin.program = 60, 40
        shifted = horn.notes.numpy()
        horn.notes = symusic.Note.from_numpy(time=shifted["time"] + tpq // 8, duration=shifted["duration"],
                                             pitch=shifted["pitch"], velocity=np.full(shifted["pitch"].size, 57,
                                                                                      np.int8))  # off the grid
        horn.controls.append(symusic.ControlChange(tpq, 11, 90))  # a swell and a bend play the horn's notes
        horn.pitch_bends.append(symusic.PitchBend(2 * tpq, 512))
        kit = symusic.Track("Kit", 0, True)
        kit.notes.extend(symusic.Note(int(t), tpq // 2, 36, 100) for t in shifted["time"][::2])
        voices[1].name = "Alto Chorus"  # a voice's own name, kept on its track
        score.tracks = [horn, *score.tracks, violin, kit]
        given = tmp_path / f"with_instruments{k}.mid"
        score.dump_midi(str(given))
        out = tmp_path / f"out{k}"
        assert main(["infill", "-c", str(parts_run), "--input", str(given), "--bars", "2-3", "--parts", "A",
                     "-s", "0", "--no-wav", "--no-png", "-o", str(out)]) == 0
        assert "beyond the parts the model reads (it did not hear them): Horn, Violin, Kit" in capsys.readouterr().out
        made = symusic.Score(str(next(out.glob("*.mid"))))
        names = [t.name for t in made.tracks]
        assert names == [t.name for t in score.tracks], names  # the input's tracks, in its order
        assert [n for n in names if n != "Soprano"] == ["Horn", "Alto Chorus", "Tenor", "Bass", "Violin", "Kit"]
        assert made.tracks[-1].is_drum
        for want, got in ((horn, made.tracks[0]), (violin, made.tracks[-2]), (kit, made.tracks[-1])):
            a, b = want.notes.numpy(), got.notes.numpy()
            assert got.program == want.program
            assert np.allclose(a["time"] / tpq, b["time"] / made.ticks_per_quarter)
            assert np.array_equal(a["pitch"], b["pitch"]) and np.array_equal(a["velocity"], b["velocity"])
        mine = made.tracks[0]
        assert [(c.time / made.ticks_per_quarter, c.number, c.value) for c in mine.controls] == [
            (c.time / tpq, c.number, c.value) for c in horn.controls] and horn.controls.numpy()["number"].size
        assert [(b.time / made.ticks_per_quarter, b.value) for b in mine.pitch_bends] == [
            (b.time / tpq, b.value) for b in horn.pitch_bends] and 512 in horn.pitch_bends.numpy()["value"]
        info = json.loads(next(out.glob("*.json")).read_text())
        assert info["unseen_tracks"] == ["Horn", "Violin", "Kit"]


def test_infill_refuses_a_copied_track_that_reaches_far_past_the_piece(parts_run, bach_dir, tmp_path, capsys):
    """A track the model does not read is copied as it is, so it counts in the stretch check: a horn note 2000 beats
    on made a 177 MB WAV."""
    satb = ["Soprano", "Alto", "Tenor", "Bass"]
    piece = next(p for p in sorted(bach_dir.rglob("*.mid"))
                 if [t.name for t in symusic.Score(str(p)).tracks if t.note_num()] == satb)
    score = symusic.Score(str(piece))
    tpq = score.ticks_per_quarter
    first = min(t.notes[0].time for t in score.tracks if t.note_num())
    horn = symusic.Track("Horn", 60)
    horn.notes.append(symusic.Note(first + tpq * 2000, tpq, 60, 80))
    score.tracks.append(horn)
    score.dump_midi(str(tmp_path / "far.mid"))
    assert main(["infill", "-c", str(parts_run), "--input", str(tmp_path / "far.mid"), "--bars", "2", "--no-wav",
                 "-o", str(tmp_path / "far")]) == 2
    err = capsys.readouterr().err
    assert "beats in which no note starts or ends" in err and err.count("\n") == 1, err
    assert not (tmp_path / "far").exists() or not any((tmp_path / "far").iterdir())


def test_infill_gives_back_a_lead_in_the_encoding_reads_as_a_pickup(parts_run, tmp_path):
    """Voices that enter on beat 4 of a 4/4 file (no pickup meter): the encoding writes from the first note, and
    the result used to start there, every note 3 beats early (a horn's lead-in piled on beat 0). Now every kept
    note, the horn's too, is where the input has it, and the meter is the input's 4/4 from time 0."""
    score = symusic.Score(480)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for v, low in zip(["Soprano", "Alto", "Tenor", "Bass"], (0, 4, 9, 17), strict=True):
        t = symusic.Track(v)
        t.notes.extend(symusic.Note(480 * (3 + i), 480, p - low, 80)
                       for i, p in enumerate([72, 74, 76, 77, 79, 77, 76, 74] * 2))
        score.tracks.append(t)
    horn = symusic.Track("Horn", 60)
    horn.notes.extend(symusic.Note(480 * i, 480, 60 + i, 80) for i in range(4))
    score.tracks.append(horn)
    score.dump_midi(str(tmp_path / "lead.mid"))
    out = tmp_path / "out"
    assert main(["infill", "-c", str(parts_run), "--input", str(tmp_path / "lead.mid"), "--bars", "3",
                 "--parts", "A", "-s", "0", "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    made = symusic.Score(str(next(out.glob("*.mid"))))
    for want, got in zip(score.tracks, made.tracks, strict=True):
        if want.name != "Alto":
            assert np.array_equal(beats(score, want), beats(made, got)), want.name
    assert [(t.time, t.numerator, t.denominator) for t in made.time_signatures] == [(0, 4, 4)]
    assert json.loads(next(out.glob("*.json")).read_text())["span_beats"] == [8.0, 12.0]


def test_top_line_keeps_a_played_legato(parts_run, tmp_path):
    """--top-line cuts a played legato first (one line, not a note under another): both notes stay."""
    melody = write(tmp_path, [(0, 580, 74), (480, 480, 72), (960, 480, 71), (1440, 480, 72)])
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--top-line", "--no-wav", "--no-png",
                 "-s", "0", "-o", str(out), "-q"]) == 0
    info = json.loads(next(out.glob("*.json")).read_text())
    assert info["melody_top_line"] == {"dropped": 0, "cut": 0} and info["melody_legato_cut"] == 1
    assert info["melody_notes"] == 4


def trio(bach_dir: Path, tmp_path: Path, names: tuple[str, str, str] = ("Soprano", "Alto", "Bass")) -> Path:
    """A chorale without its tenor: its Soprano, Alto and Bass tracks, named ``names``."""
    piece = next(p for p in sorted(bach_dir.rglob("*.mid"))
                 if [t.name for t in symusic.Score(str(p)).tracks if t.note_num()] == ["Soprano", "Alto", "Tenor",
                                                                                       "Bass"])
    score = symusic.Score(str(piece))
    score.tracks = [t for t in score.tracks if t.note_num() and t.name in ("Soprano", "Alto", "Bass")]
    for t, name in zip(score.tracks, names, strict=True):
        t.name = name
    score.dump_midi(str(tmp_path / "trio.mid"))
    return tmp_path / "trio.mid"


def test_a_piece_without_its_tenor_is_laid_out_in_the_places_the_model_learnt(parts_run, bach_dir, tmp_path):
    """A part's NOTE tokens name its place: read as three parts, a bass was written in the tenor's place (the
    shipped model's bass: median MIDI 59 against Bach's 52). Laid out as four, the bass is in the bass's place and
    the same notes come back in the same order; a quartet is left as it is."""
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    ids = read_input(enc, str(trio(bach_dir, tmp_path)))
    lay = satb_layout(enc, ids)
    laid, added = lay.ids, lay.added
    parts = enc.parts()
    before, after = parts.decode_quantized(ids), parts.decode_quantized(laid)
    assert before["role"].tolist() == [0, 1, 3] and after["role"].tolist() == [0, 1, 2, 3] and added.tolist() == [2]
    for k in ("onset", "pitch", "duration"):
        assert np.array_equal(before[k], after[k])
    assert np.array_equal(after["part"], np.array([0, 1, 3])[before["part"]])
    four = read_input(enc, str(next(p for p in sorted(bach_dir.rglob("*.mid")))))
    same = satb_layout(enc, four)
    assert np.array_equal(same.ids, four) and same.added.size == 0


def test_a_trio_of_instruments_is_laid_out_by_register(parts_run, bach_dir, tmp_path):
    """A chorale's Soprano, Alto and Bass on a Flute, an Oboe and a Bassoon (no track named for a voice) were read in
    places 0-2: the shipped model rewrote the bassoon's bars 2-5 at median MIDI 59.5 (the tenor's register; Bach's
    notes there: 51.3) and continued it at 58.1. By register they are the Soprano, Alto and Bass, as the named trio
    is (51.9 and 50.6 now): the same laid-out piece, the tracks' names and order kept, the tenor the model writes
    beside them dropped. Listed from the bottom, they are laid out by their medians the same way; a part that plays
    chords takes its place as an instrument (Other in the header: it keeps its chords)."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    (tmp_path / "w").mkdir()
    winds = trio(bach_dir, tmp_path / "w", ("Flute", "Oboe", "Bassoon"))
    voices = trio(bach_dir, tmp_path)
    lay, named = satb_layout(enc, read_input(enc, str(winds))), satb_layout(enc, read_input(enc, str(voices)))
    assert lay.place_of(3).tolist() == [0, 1, 3] and lay.added.tolist() == [2]
    assert np.array_equal(lay.ids, named.ids)
    made = musesynth.generate(musesynth.load_model(parts_run, "cpu"), primer=winds, length=150, seed=0)[0]
    assert [t.name for t in made.score.tracks] == ["Flute", "Oboe", "Bassoon"]
    out = tmp_path / "fill"
    assert main(["infill", "-c", str(parts_run), "--input", str(winds), "--bars", "2-3", "--parts", "bassoon",
                 "-s", "1", "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    assert [t.name for t in symusic.Score(str(next(out.glob("*.mid")))).tracks] == ["Flute", "Oboe", "Bassoon"]
    score = symusic.Score(str(winds))
    score.tracks = score.tracks[::-1]  # Bassoon, Oboe, Flute
    score.dump_midi(str(tmp_path / "up.mid"))
    up = satb_layout(enc, read_input(enc, str(tmp_path / "up.mid")))
    assert up.place_of(3).tolist() == [3, 1, 0] and np.array_equal(up.ids, named.ids)
    score = symusic.Score(str(winds))
    first = score.tracks[1].notes[0]
    score.tracks[1].notes.append(symusic.Note(first.time, first.duration, first.pitch - 3, 80))  # the oboe's chord
    score.dump_midi(str(tmp_path / "chord.mid"))
    lay = satb_layout(enc, read_input(enc, str(tmp_path / "chord.mid")))
    assert lay.place_of(3).tolist() == [0, 1, 3]  # placed by register too, the oboe an instrument in the header
    assert enc.parts().parts_of(lay.ids)[0].tolist() == [0, 4, 2, 3]


def test_a_quartet_listed_from_the_cello_is_rewritten_and_continued_in_its_lines_places(parts_run, bach_dir,
                                                                                       tmp_path):
    """A string quartet listed Cello, Viola, Violin II, Violin I was read with its cello in the soprano's place:
    the shipped model rewrote the cello's bars 2-5 at median MIDI 70.5 (Bach's notes: 50.7), now 52.6. Its notes
    come back in the laid-out order (violin first at an onset), so infill keeps every other note exactly and a
    continuation names each line's track by its own line (before, the Violin I's line came out named Cello), in
    the file's track order."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    piece = next(p for p in sorted(bach_dir.rglob("*.mid"))
                 if [t.name for t in symusic.Score(str(p)).tracks if t.note_num()] == ["Soprano", "Alto", "Tenor",
                                                                                       "Bass"])
    score = symusic.Score(str(piece))
    score.tracks = [t for t in score.tracks if t.note_num()][::-1]
    names = ["Cello", "Viola", "Violin II", "Violin I"]
    for t, name, program in zip(score.tracks, names, (42, 41, 40, 40), strict=True):
        t.name, t.program = name, program
    quartet = tmp_path / "quartet.mid"
    score.dump_midi(str(quartet))
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    ids = read_input(enc, str(quartet))
    lay = satb_layout(enc, ids)
    assert lay.place_of(4).tolist() == [3, 2, 1, 0] and lay.added.size == 0 and lay.notes is not None
    parts = enc.parts()
    before, after = parts.decode_quantized(ids), parts.decode_quantized(lay.ids)
    assert np.array_equal(before["pitch"][lay.notes], after["pitch"])
    out = tmp_path / "fill"
    assert main(["infill", "-c", str(parts_run), "--input", str(quartet), "--bars", "2-3", "--parts", "cello",
                 "-s", "1", "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    made = symusic.Score(str(next(out.glob("*.mid"))))
    assert [t.name for t in made.tracks] == names
    for given, back in zip(score.tracks[1:], made.tracks[1:], strict=True):
        assert np.array_equal(beats(score, given), beats(made, back))
    cont = musesynth.generate(musesynth.load_model(parts_run, "cpu"), primer=quartet, length=60, seed=0)[0]
    assert [t.name for t in cont.score.tracks] == names  # in the file's order (it came back Violin I first)
    tracks = {t.name: t for t in cont.score.tracks}
    for given in score.tracks:  # each track opens with its own line's notes
        n, g = tracks[given.name].notes.numpy(), given.notes.numpy()
        assert tracks[given.name].program == given.program
        assert np.array_equal(n["pitch"][:4], g["pitch"][:4]), given.name


def test_a_trio_with_its_added_tenor_a_legato_trio_and_a_late_bassoon_keep_their_places(parts_run, bach_dir,
                                                                                       tmp_path, capsys):
    """Found by review: (1) ``infill --parts T`` on a wind trio writes Flute, Oboe, Tenor, Bassoon; read back, the
    lone Tenor took the soprano's place (a continuation moved it from median 58 to 76); it is now laid out with the
    instruments by register. (2) Lines each held a 16th of a beat into the next note read as chords, so the trio
    was not laid out; legato is one line now. (3) A bassoon entering after the primer's opening was dropped from
    the continuation (a named Bass was kept), and a late part came out as program 0: both are the file's now.
    (4) ``--parts`` takes a trio's instruments by the voice whose place they have (B: the bassoon), and a refusal
    lists them so."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    winds = trio(bach_dir, tmp_path, ("Flute", "Oboe", "Bassoon"))
    score = symusic.Score(str(winds))
    for t, program in zip(score.tracks, (73, 68, 70), strict=True):
        t.program = program
    tenor = score.tracks[2].copy()
    tenor.name = "Tenor"
    tenor.notes = symusic.Score(str(winds)).tracks[2].notes.copy()
    for n in tenor.notes:
        n.pitch += 7
    with_tenor = symusic.Score(str(winds))
    with_tenor.tracks = [score.tracks[0], score.tracks[1], tenor, score.tracks[2]]
    with_tenor.dump_midi(str(tmp_path / "t.mid"))
    assert satb_layout(enc, read_input(enc, str(tmp_path / "t.mid"))).place_of(4).tolist() == [2, 0, 1, 3]
    legato = score.copy()
    for t in legato.tracks:
        for n in t.notes:
            n.duration += score.ticks_per_quarter // 16
    legato.dump_midi(str(tmp_path / "legato.mid"))
    assert satb_layout(enc, read_input(enc, str(tmp_path / "legato.mid"))).place_of(3).tolist() == [0, 1, 3]
    late = score.copy()
    bassoon = late.tracks[2]
    bassoon.notes = [n for n in bassoon.notes if n.time >= 16 * score.ticks_per_quarter]
    late.dump_midi(str(tmp_path / "late.mid"))
    made = musesynth.generate(musesynth.load_model(parts_run, "cpu"), primer=tmp_path / "late.mid", length=80,
                              primer_seconds=4.0, seed=1)[0]
    assert [(t.name, t.program) for t in made.score.tracks] == [("Flute", 73), ("Oboe", 68), ("Bassoon", 70)]
    score.dump_midi(str(winds))
    out = tmp_path / "fill"
    assert main(["infill", "-c", str(parts_run), "--input", str(winds), "--bars", "2-3", "--parts", "B", "-s", "1",
                 "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    info = json.loads(next(out.glob("*.json")).read_text())
    assert info["parts"] == ["Bassoon"]
    assert main(["infill", "-c", str(parts_run), "--input", str(winds), "--bars", "2-3", "--parts", "X",
                 "-o", str(out)]) == 2
    assert "its parts: Flute (S), Oboe (A), Bassoon (B);" in capsys.readouterr().err


def test_the_lowest_of_instrument_lines_is_the_bass_unless_it_lies_in_the_middle_voices():
    """A chorale's bass may sit at a median of 55, nearer the tenor's middle (58.5) than the bass's (50): as the
    lowest line of three it is still the Bass. A trio of high lines (three flutes) is Soprano, Alto, Tenor."""
    from musesynth.generate.layout import register_roles

    def roles(*medians: int) -> list[int]:
        part = np.repeat(np.arange(len(medians)), 4)
        q = {"part": part, "pitch": np.repeat(medians, 4), "onset": np.tile(np.arange(4) * 12, len(medians)),
             "duration": np.full(part.size, 12)}
        return register_roles(q, np.full(len(medians), 4), 3)[0].tolist()

    assert roles(72, 64, 55) == [0, 1, 3]
    assert roles(79, 74, 67) == [0, 1, 2]
    assert roles(70, 50) == [0, 3]
    assert roles(50, 70) == [3, 0]  # listed from the bottom: by the medians
    assert roles(64, 66, 50) == [0, 1, 3]  # two lines crossing a little keep the order listed


@pytest.mark.parametrize("asked, tracks", [("B", ["Soprano", "Alto", "Bass"]), (None, ["Soprano", "Alto", "Bass"]),
                                           ("T", ["Soprano", "Alto", "Tenor", "Bass"])])
def test_infill_of_a_trio_keeps_its_tracks_and_can_add_the_missing_voice(asked, tracks, parts_run, bach_dir,
                                                                          tmp_path):
    """The tenor the model writes beside a trio's rewritten bass (as it learnt four voices) is not the user's: the
    result has the trio's three tracks, every note outside the rewritten bars as it was; ``--parts T`` asks for it,
    and it comes on its own track between Alto and Bass with notes only in those bars."""
    import musesynth

    given = trio(bach_dir, tmp_path)
    made = musesynth.infill(given, "2-3", parts=asked, model=str(parts_run), seed=2)[0]
    assert [t.name for t in made.score.tracks] == tracks
    lo, hi = made.info["span_beats"]
    src = symusic.Score(str(given))
    tpq, mtpq = src.ticks_per_quarter, made.score.ticks_per_quarter
    for t in made.score.tracks:
        n = t.notes.numpy()
        on = n["time"] / mtpq
        if t.name == "Tenor":
            assert t.note_num() and ((on >= lo) & (on < hi)).all()
            continue
        s = next(x for x in src.tracks if x.name == t.name).notes.numpy()
        outside = lambda a, scale: (a["time"] / scale < lo) | (a["time"] / scale >= hi)  # noqa: E731
        kept = outside(s, tpq) if asked is None or t.name[0] == asked else np.ones(s["pitch"].size, bool)
        mine = outside(n, mtpq) if asked is None or t.name[0] == asked else np.ones(n["pitch"].size, bool)
        assert np.array_equal(s["pitch"][kept], n["pitch"][mine]), t.name


def test_an_added_voice_sits_among_the_voices_in_the_files_own_order(parts_run, bach_dir, tmp_path):
    """A trio listed bottom up (Bass, Alto, Soprano) with ``--parts T``: the Tenor's track comes between Bass and
    Alto (before, it was put before the next part in SATB order, the Bass: first, under nothing); a trio without
    its soprano gets the added Soprano first, beside the Alto."""
    import musesynth

    given = symusic.Score(str(trio(bach_dir, tmp_path)))
    given.tracks = list(reversed(list(given.tracks)))
    given.dump_midi(str(tmp_path / "reversed.mid"))
    made = musesynth.infill(tmp_path / "reversed.mid", "2-3", parts="T", model=str(parts_run), seed=2)[0]
    assert [t.name for t in made.score.tracks] == ["Bass", "Tenor", "Alto", "Soprano"]
    low = symusic.Score(str(tmp_path / "reversed.mid"))
    low.tracks = [t for t in low.tracks if t.name != "Soprano"]
    low.tracks[1].name = "Tenor"  # Bass, Tenor: two voices listed bottom up
    low.dump_midi(str(tmp_path / "low.mid"))
    made = musesynth.infill(tmp_path / "low.mid", "2-3", parts="S", model=str(parts_run), seed=2)[0]
    assert [t.name for t in made.score.tracks] == ["Bass", "Tenor", "Soprano"]


def test_a_plain_fill_writes_only_the_parts_the_piece_has(parts_run, bach_dir, tmp_path):
    """A trio of parts the model cannot place (Soprano renamed "Melody": an instrument's name) is left as three
    parts, and a fill of every note in its bars writes no fourth part (before, a "Part 4" track came out)."""
    import musesynth

    given = trio(bach_dir, tmp_path, ("Melody", "Alto", "Bass"))
    for seed in range(3):
        made = musesynth.infill(given, "2-3", model=str(parts_run), seed=seed, top_k=0)[0]
        assert sorted(t.name for t in made.score.tracks) == ["Alto", "Bass", "Melody"]


def test_parts_of_a_trio_are_numbered_and_listed_as_the_piece_has_them(parts_run, bach_dir, tmp_path):
    """The tenor a trio is laid out with is the model's, not the piece's: ``--parts 3`` is the trio's Bass, "4" and
    unknown names list the trio's own parts, and naming all four voices keeps the tenor asked for."""
    import musesynth
    from musesynth.errors import BadRequest
    from musesynth.generate.infill import asked_parts, parse_parts, part_labels, read_input
    from musesynth.generate.layout import satb_layout

    given = trio(bach_dir, tmp_path)
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    lay = satb_layout(enc, read_input(enc, str(given)))
    ids, added = lay.ids, lay.added
    parts = enc.parts()
    assert parse_parts("3", parts, ids, added) == [3] and parse_parts("1,T", parts, ids, added) == [0, 2]
    assert parse_parts("S,A,B", parts, ids, added) == [] and parse_parts("S,A,T,B", parts, ids, added) == []
    labels = part_labels(parts, ids, added)
    assert asked_parts("S,A,T,B", enc, "m", labels, added)[1].size == 0  # the tenor asked for is kept
    assert asked_parts("S,A,B", enc, "m", labels, added)[1].tolist() == [2]
    with pytest.raises(BadRequest, match=r"'4': the piece has no such part \(its parts: Soprano, Alto, Bass;"):
        parse_parts("4", parts, ids, added)
    made = musesynth.infill(given, "2-3", parts="S,A,T,B", model=str(parts_run), seed=4)[0]
    assert [t.name for t in made.score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]


def band(bach_dir: Path, tmp_path: Path) -> Path:
    """A chorale's lines as a band: "Lead Vocal" (the soprano), "Piano" (the alto, with a few chords: a band's
    piano; a piano playing one line would be laid out by register, as a trio of instruments), "Bass" (program 33)
    and drums."""
    given = symusic.Score(str(trio(bach_dir, tmp_path)))
    for t, (name, program) in zip(given.tracks, [("Lead Vocal", 54), ("Piano", 0), ("Bass", 33)], strict=True):
        t.name, t.program = name, program
    piano = given.tracks[1]
    piano.notes.extend(symusic.Note(n.time, n.duration, n.pitch - 3, n.velocity) for n in list(piano.notes)[:4])
    kit = symusic.Track("Drums", 0, True)
    kit.notes.extend(symusic.Note(int(t), 120, 36, 100) for t in given.tracks[0].notes.numpy()["time"][::2])
    given.tracks.append(kit)
    given.dump_midi(str(tmp_path / "band.mid"))
    return tmp_path / "band.mid"


def test_parts_are_named_and_numbered_as_the_files_tracks(parts_run, bach_dir, tmp_path):
    """A band's "Bass" beside "Lead Vocal" and "Piano" is no choir missing three voices: before, it alone was laid
    out and the others left out of the model's hearing, so ``--parts 1`` rewrote the Bass, "2" was refused
    ("its parts: Bass") and a continuation dropped the vocal and piano. Now the parts are read as they are,
    numbered in the file's track order and named by their tracks' names."""
    import musesynth
    from musesynth.errors import BadRequest
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    given = band(bach_dir, tmp_path)
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    lay = satb_layout(enc, read_input(enc, str(given)))
    assert lay.unheard.size == 0  # nothing left out of the model's hearing (laid out by register: the tenor added)
    for asked, name in (("1", "Lead Vocal"), ("2", "Piano"), ("piano", "Piano"), ("3", "Bass"), ("B", "Bass")):
        made = musesynth.infill(given, "2-3", parts=asked, model=str(parts_run), seed=1)[0]
        assert made.info["parts"] == [name] and made.info["unseen_tracks"] == ["Drums"], asked
        assert [t.name for t in made.score.tracks] == ["Lead Vocal", "Piano", "Bass", "Drums"]
    with pytest.raises(BadRequest, match=r"its parts: Lead Vocal \(S\), Piano, Bass; name a part by its voice "):
        musesynth.infill(given, "2-3", parts="4", model=str(parts_run))


def test_a_plain_fill_of_one_line_parts_keeps_one_note_at_a_time(parts_run, bach_dir, tmp_path):
    """A folk tune on one track named "Fiddle" and a chorale, bars 2-3 rewritten whole: every part played one note
    at a time, so the fill does too (before, a plain fill wrote chords into a one-line tune; sampled hot, the tiny
    model does so in every seed); a part with chords (a piano's) keeps them."""
    import musesynth
    from musesynth.generate.voices import most_sounding

    tune = soprano_alone(sorted(bach_dir.rglob("*.mid"))[1], tmp_path / "fiddle.mid", "Fiddle")
    for piece in (tune, sorted(bach_dir.rglob("*.mid"))[2]):
        for made in musesynth.infill(piece, "2-3", model=str(parts_run), seed=3, num_samples=2, temperature=2.5,
                                     top_k=0):
            assert made.info["new_notes"] > 0
            for t in made.score.tracks:
                n = t.notes.numpy()
                assert most_sounding(n["time"], n["duration"]) <= 1, t.name
    piano = symusic.Score(str(tune))
    chord = piano.tracks[0].notes[0].copy()
    chord.pitch -= 4
    piano.tracks[0].notes.append(chord)
    piano.tracks[0].name = "Piano"
    piano.dump_midi(str(tmp_path / "piano.mid"))
    made = musesynth.infill(tmp_path / "piano.mid", "2-3", model=str(parts_run), seed=3, num_samples=3,
                            temperature=2.5, top_k=0)
    n = [m.score.tracks[0].notes.numpy() for m in made]
    assert max(most_sounding(x["time"], x["duration"]) for x in n) > 1  # the fill may write chords there


def test_an_added_voice_fills_the_files_empty_track_for_it_at_the_others_velocity(parts_run, bach_dir, tmp_path):
    """A trio with an empty "Tenor" placeholder track, ``--parts T`` (reviewer): the tenor's notes went onto a second,
    new Tenor track beside the empty one, at velocity 80 in a trio played at 40. Now they fill the placeholder,
    at the other voices' velocity."""
    import musesynth

    given = symusic.Score(str(trio(bach_dir, tmp_path)))
    for t in given.tracks:
        n = t.notes.numpy()
        t.notes = symusic.Note.from_numpy(time=n["time"], duration=n["duration"], pitch=n["pitch"],
                                          velocity=np.full(n["pitch"].size, 40, np.int8))
    given.tracks = [given.tracks[0], given.tracks[1], symusic.Track("Tenor", 0), given.tracks[2]]
    given.dump_midi(str(tmp_path / "placeholder.mid"))
    made = musesynth.infill(tmp_path / "placeholder.mid", "2-3", parts="T", model=str(parts_run), seed=2)[0]
    assert [t.name for t in made.score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    tenor = made.score.tracks[2].notes.numpy()
    assert tenor["pitch"].size and (tenor["velocity"] == 40).all()


def test_the_studio_checks_parts_by_the_names_infill_takes(parts_run, bach_dir, tmp_path):
    """The studio's "rewrite voices" field is checked as infill reads it: a quartet's "viola" is a part (before, the
    page refused it, listing "Part 1 ... Part 4", while the CLI took it)."""
    from musesynth.studio.jobs import FieldError
    from musesynth.studio.rewrite import check_rewrite

    score = symusic.Score(str(trio(bach_dir, tmp_path)))
    for t, name in zip(score.tracks, ["Violin", "Viola", "Cello"], strict=True):
        t.name = name
    score.dump_midi(str(tmp_path / "strings.mid"))
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    check_rewrite({"voices": "viola,3"}, enc, "run/gru", tmp_path / "strings.mid", "strings.mid", (2, 3))
    with pytest.raises(FieldError, match=r"its parts: Violin \(S\), Viola \(A\), Cello \(B\)"):
        check_rewrite({"voices": "horn"}, enc, "run/gru", tmp_path / "strings.mid", "strings.mid", (2, 3))


def test_a_parts_new_notes_go_to_its_own_track_not_one_merged_into_it():
    """A parts encoding that merges tracks beyond ``max_parts`` into the last part (reviewer: Piano, Soprano, Bass
    read as 2 parts put the Bass's new notes on the Piano track, listed first): a part's own track is the one it
    is read from first, and parts are numbered by it."""
    from musesynth.generate.infill import part_labels
    from musesynth.generate.infill_output import own_tracks
    from musesynth.generate.layout import satb_layout

    enc = get_encoding("parts", max_parts=2, drop_extra_parts=False)
    score = symusic.Score(480)
    for name, pitch in (("Piano", 60), ("Soprano", 72), ("Bass", 48)):
        t = symusic.Track(name, 0)
        t.notes.extend(symusic.Note(480 * i, 480, pitch, 80) for i in range(8))
        score.tracks.append(t)
    ids = enc.encode(score)
    lay = satb_layout(enc, ids)
    own = own_tracks(enc, score, lay)
    assert own == {0: 1, 1: 2}  # Soprano's track, then Bass's (the Piano merged into the Bass's part)
    assert part_labels(enc, lay.ids, lay.added, score, own).label == ["Soprano", "Bass"]


def test_a_fill_written_as_more_voices_than_the_input_has_may_take_more_tokens():
    from musesynth.generate.infill import Span, fill_budget

    span = Span(np.zeros(0, np.int64), 0, 8, 100, 180)  # 80 tokens as given
    assert fill_budget(span, 512, None) == 256  # half the context
    assert fill_budget(span, 512, None, 2.0) == 384  # a duet written as four voices: up to three quarters
    assert fill_budget(span, 512, 50, 2.0) == 50
    short = Span(np.zeros(0, np.int64), 0, 2, 100, 150)
    assert fill_budget(short, 512, None) == 182 and fill_budget(short, 512, None, 2.0) == 332


def test_a_voice_asked_for_keeps_its_track_when_the_fill_is_cut_short(parts_run, bach_dir, tmp_path):
    """``--parts T`` on a trio with a budget of one token: the Tenor's track is there, empty, as the sidecar says
    (before, the track was dropped while ``parts`` still named it)."""
    import musesynth

    made = musesynth.infill(trio(bach_dir, tmp_path), "2-3", parts="T", model=str(parts_run), seed=4,
                            max_tokens=1)[0]
    assert [t.name for t in made.score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert made.info["parts"] == ["Tenor"] and made.info["new_notes"] == made.score.tracks[2].note_num() == 0


def horn_and_trio(bach_dir: Path, tmp_path: Path, lead_beats: int = 0) -> Path:
    """A chorale's Soprano, Alto and Bass after a horn (the soprano an octave down), the voices entering
    ``lead_beats`` after the horn's first note."""
    given = symusic.Score(str(trio(bach_dir, tmp_path)))
    tpq = given.ticks_per_quarter
    s = given.tracks[0].notes.numpy()
    horn = symusic.Track("Horn", 60)
    horn.notes = symusic.Note.from_numpy(time=s["time"], duration=s["duration"], pitch=s["pitch"] - 12,
                                         velocity=s["velocity"])
    for t in given.tracks:
        n = t.notes.numpy()
        t.notes = symusic.Note.from_numpy(time=n["time"] + lead_beats * tpq, duration=n["duration"],
                                          pitch=n["pitch"], velocity=n["velocity"])
    given.tracks = [horn, *given.tracks]
    given.dump_midi(str(tmp_path / "horn_trio.mid"))
    return tmp_path / "horn_trio.mid"


def test_an_instrument_beside_fewer_voices_is_copied_not_given_a_voices_place(parts_run, bach_dir, tmp_path):
    """Soprano, Alto and Bass with a horn: read as four parts the horn took the bass's place and the bass the
    tenor's (reviewer: the bass written at median MIDI 63.5). The voices are laid out in their places and the horn
    is copied as it is, first as in the input; every note outside the rewritten bass is kept."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    given = horn_and_trio(bach_dir, tmp_path)
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    ids = read_input(enc, str(given))
    assert enc.parts().parts_of(ids)[0].tolist() == [0, 1, 3, 4]  # the horn in the fourth place
    lay = satb_layout(enc, ids)
    assert lay.added.tolist() == [2] and lay.unheard.tolist() == [3]
    assert enc.parts().parts_of(lay.ids)[0].tolist() == [0, 1, 2, 3]
    made = musesynth.infill(given, "2-3", parts="B", model=str(parts_run), seed=1)[0]
    assert [t.name for t in made.score.tracks] == ["Horn", "Soprano", "Alto", "Bass"]
    assert made.info["unseen_tracks"] == ["Horn"]
    src = symusic.Score(str(given))
    for k in range(3):
        a, b = src.tracks[k].notes.numpy(), made.score.tracks[k].notes.numpy()
        assert np.allclose(a["time"] / src.ticks_per_quarter, b["time"] / made.score.ticks_per_quarter)
        assert np.array_equal(a["pitch"], b["pitch"])


def test_a_lead_in_an_instrument_plays_before_fewer_voices_is_left_out_and_kept_in_time(parts_run, bach_dir,
                                                                                         tmp_path):
    """Voices entering 3 beats after the horn: before, the piece was read as it was, the horn in the bass's place
    and the bass in the tenor's (the shipped model's bass at median MIDI 61 in 10 such chorales; Bach's 50.5).
    Without the horn the voices read as a pickup (the same steps), so they are laid out in their places and the
    result is written on the input's time line: every note outside the rewritten bass, the horn's too, is where
    the input has it, under the input's 4/4 from time 0."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    given = horn_and_trio(bach_dir, tmp_path, lead_beats=3)
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    ids = read_input(enc, str(given))
    lay = satb_layout(enc, ids)
    assert lay.added.tolist() == [2] and lay.unheard.tolist() == [3]
    assert enc.parts().decode_quantized(lay.ids)["pickup"] is not None  # the voices alone open with a pickup
    made = musesynth.infill(given, "3-4", parts="B", model=str(parts_run), seed=1)[0]
    assert [t.name for t in made.score.tracks] == ["Horn", "Soprano", "Alto", "Bass"]
    src = symusic.Score(str(given))
    for k in range(3):  # horn, soprano, alto: not rewritten
        a, b = src.tracks[k].notes.numpy(), made.score.tracks[k].notes.numpy()
        assert np.allclose(a["time"] / src.ticks_per_quarter, b["time"] / made.score.ticks_per_quarter)
        assert np.array_equal(a["pitch"], b["pitch"])
    bars = made.info["span_beats"]
    a, b = src.tracks[3].notes.numpy(), made.score.tracks[3].notes.numpy()
    outside = lambda n, tpq: (n["time"] / tpq < bars[0]) | (n["time"] / tpq >= bars[1])  # noqa: E731
    assert np.allclose(a["time"][outside(a, src.ticks_per_quarter)] / src.ticks_per_quarter,
                       b["time"][outside(b, made.score.ticks_per_quarter)] / made.score.ticks_per_quarter)
    assert [(t.time, t.numerator, t.denominator) for t in made.score.time_signatures][:1] == [(0, 4, 4)]


def test_a_drum_track_or_an_empty_one_chosen_as_the_melody_is_named_in_its_error(bach_dir, tmp_path, capsys):
    """``--part Drums`` said "unknown part" with a listing that left the drums out, and ``--part 1`` (the chorales'
    empty duplicate Soprano) said "the melody has no notes"; each now says what the track is and lists the tracks
    to choose from. ``--part soprano`` takes the Soprano track with notes, whichever of the two comes first."""
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[1]))
    drums = symusic.Track(name="Drums", program=0, is_drum=True)
    drums.notes.append(symusic.Note(0, 480, 36, 100))
    empty = next(t for t in score.tracks if not t.note_num())
    score.tracks = [empty, *[t for t in score.tracks if t.note_num()], drums]
    melody = tmp_path / "band.mid"
    score.dump_midi(str(melody))
    for part, said in [("Drums", "--part 'Drums': is a drum track: it has no melody to harmonise (tracks: 0:Soprano, "),
                       ("0", "--part 0:Soprano: that track of band.mid has no notes (tracks with notes: 1:Soprano, "),
                       ("9", "drum tracks are not counted")]:
        assert main(["harmonize", "--melody", str(melody), "--part", part, "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    assert main(["harmonize", "--melody", str(melody), "--part", "soprano", "--no-wav", "--no-png", "-s", "1",
                 "-o", str(tmp_path / "out"), "-q"]) == 0


def test_the_harmonisation_keeps_the_melody_files_tempo_map(parts_run, bach_dir, tmp_path):
    """The encoding keeps tempos in bins: a melody at 100 BPM came back at 100.91 and 150 at 151.2 (fuzzing
    helper), so the voices drifted against the user's own track in a DAW (its last note at 32.48 s, not 32.67 s).
    The harmonisation has the melody file's tempo map: every melody note sounds at the same second."""
    melody = soprano_alone(sorted(bach_dir.rglob("*.mid"))[1], tmp_path / "tune.mid", "Melody")
    score = symusic.Score(str(melody))
    q = score.ticks_per_quarter
    score.tempos = [symusic.Tempo(0, 100.0), symusic.Tempo(8 * q, 150.0)]
    score.dump_midi(str(melody))
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "-s", "1", "--no-wav", "--no-png",
                 "-o", str(out), "-q"]) == 0
    made = symusic.Score(str(next(out.glob("*.mid"))))
    assert [round(t.qpm, 3) for t in made.tempos] == [round(t.qpm, 3) for t in score.tempos]
    given, back = score.to("second").tracks[0].notes.numpy(), made.to("second").tracks[0].notes.numpy()
    np.testing.assert_allclose(back["time"], given["time"], atol=1e-3)


def test_a_pianos_left_hand_under_right_hand_chords_is_read_as_the_bass(parts_run, tmp_path):
    """A piano piece on two tracks, right-hand chords over a left-hand line (fuzzing helper): the left hand was read
    in the alto's place, so the shipped model left it silent for 8 beats in 2 fills of 3 and continued it without
    a note. By register it is the Bass, and the right hand keeps its place on top as an instrument (Other in the
    header, so its chords are allowed); both tracks come back from a fill and a continuation."""
    import musesynth
    from musesynth.generate.infill import read_input
    from musesynth.generate.layout import satb_layout

    rh = symusic.Track("Piano RH", 0)
    lh = symusic.Track("Piano LH", 0)
    for beat in range(32):
        for p in (72, 76, 79) if beat % 4 < 2 else (74, 77, 81):
            rh.notes.append(symusic.Note(beat * 480, 480, p, 80))
        if beat % 2 == 0:
            lh.notes.append(symusic.Note(beat * 480, 960, (48, 53, 55, 50)[beat // 2 % 4], 80))
    score = symusic.Score(480)
    score.tracks = [rh, lh]
    score.dump_midi(str(tmp_path / "piano.mid"))
    enc = encoding_from_vocab(json.loads((parts_run.parent / "ds" / "vocab.json").read_text()))
    lay = satb_layout(enc, read_input(enc, str(tmp_path / "piano.mid")))
    assert lay.place_of(2).tolist() == [0, 3] and enc.parts().parts_of(lay.ids)[0].tolist() == [4, 1, 2, 3]
    made = musesynth.infill(tmp_path / "piano.mid", "3-4", model=str(parts_run), seed=1)[0]
    assert [t.name for t in made.score.tracks] == ["Piano RH", "Piano LH"]
    cont = musesynth.generate(musesynth.load_model(parts_run, "cpu"), primer=tmp_path / "piano.mid", length=60,
                              primer_seconds=4.0, seed=1)[0]
    assert [t.name for t in cont.score.tracks] == ["Piano RH", "Piano LH"]


def test_the_final_chord_is_held_with_the_melodys_last_note(parts_run, bach_dir, tmp_path):
    """The melody's last note of 16 beats (a fermata) reads as 8 in tokens: the shipped model moved the voices on
    for 3-5 beats under it and stopped, leaving 11 beats of melody alone (review helper, bwv10.7). Every voice
    now sings at the melody's last onset (or holds a note into it), nothing starts after it, and that chord lasts
    as long as the melody."""
    melody = soprano_alone(sorted(bach_dir.rglob("*.mid"))[1], tmp_path / "tune.mid", "Melody")
    score = symusic.Score(str(melody))
    last = score.tracks[0].notes[-1]
    last.duration = 16 * score.ticks_per_quarter
    score.dump_midi(str(melody))
    out = tmp_path / "out"
    assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "-s", "1", "--num-samples", "2",
                 "--no-wav", "--no-png", "-o", str(out), "-q"]) == 0
    for mid in sorted(out.glob("*.mid")):
        made = symusic.Score(str(mid))
        q = made.ticks_per_quarter
        start, end = last.time / score.ticks_per_quarter, (last.time + last.duration) / score.ticks_per_quarter
        for t in made.tracks:
            n = max(t.notes, key=lambda x: x.time)
            assert n.time / q <= start and (n.time + n.duration) / q == end, t.name


def test_harmonize_samples_a_little_colder_than_free_pieces(parts_run, tmp_path):
    """harmonize's default temperature is its own (0.85: nearer Bach on every measure of the harmonisation
    benchmark), in the CLI, the API and a studio job that leaves the dial out; -t sets it as before."""
    import musesynth
    from musesynth.generate.harmonize import HARMONIZE_TEMPERATURE, HarmonizeOptions
    from musesynth.studio.rewrite import harmonize_options_from_request

    assert HARMONIZE_TEMPERATURE == 0.85
    melody = write(tmp_path, [(480 * i, 480, p) for i, p in enumerate([67, 69, 71, 72])])
    for extra, want in (([], 0.85), (["-t", "1"], 1.0)):
        out = tmp_path / f"out{len(extra)}"
        assert main(["harmonize", "-c", str(parts_run), "--melody", str(melody), "--particles", "1", "-s", "0",
                     "--no-wav", "--no-png", "-o", str(out), "-q", *extra]) == 0
        assert json.loads(next(out.glob("*.json")).read_text())["sampling"]["temperature"] == want
    made = musesynth.harmonize(melody, model=str(parts_run), particles=1)[0]
    assert made.info["sampling"]["temperature"] == 0.85
    assert musesynth.harmonize(melody, model=str(parts_run), particles=1, temperature=1.0)[0].info[
        "sampling"]["temperature"] == 1.0
    base = HarmonizeOptions(melody=str(melody))
    assert harmonize_options_from_request({"seed": 1}, base).sampling.temperature == 0.85
    assert harmonize_options_from_request({"seed": 1, "temperature": 0.5}, base).sampling.temperature == 0.5
