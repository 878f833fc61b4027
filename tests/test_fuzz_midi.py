"""Hostile MIDI: the rules that keep odd files from costing more than themselves, and a small fuzzing
campaign (a few hundred broken, huge-silence, mis-named and garbage files) through `musesynth data`
with both encodings and through `musesynth generate --primer FOLDER`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_score, scale_melody

from musesynth.cli import main
from musesynth.data import build
from musesynth.data.build import build_dataset, tokenize_files
from musesynth.data.dataset import load_manifest
from musesynth.data.files import find_midi_files
from musesynth.errors import MidiReadError
from musesynth.tokenize import base, get_encoding
from musesynth.tokenize.base import TOKENS_BASE, TOKENS_PER_NOTE
from musesynth.tokenize.midi_io import MAX_SILENCE_BEATS, cap_silences, load_score, score_notes

CHORD = get_encoding("chord")
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- raw MIDI writing
def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def note(delta: int, pitch: int = 60, dur: int = 480) -> bytes:
    return vlq(delta) + bytes([0x90, pitch, 90]) + vlq(dur) + bytes([0x80, pitch, 0])


def tempo(delta: int, mspq: int) -> bytes:
    return vlq(delta) + b"\xff\x51\x03" + mspq.to_bytes(3, "big")


def raw_midi(events: list[bytes], tpq: int = 480) -> bytes:
    """A format-0 file with one track holding ``events`` (delta-timed, as written by note/tempo)."""
    trk = b"".join(events) + b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
            + tpq.to_bytes(2, "big") + b"MTrk" + len(trk).to_bytes(4, "big") + trk)


HUGE = 0x0FFFFFFF  # the largest delta time a 4-byte VLQ holds (268M ticks)


def chord_tokens(ids: np.ndarray) -> list[str]:
    return [CHORD.vocab.tokens[i] for i in ids]


# ---------------------------------------------------------------------- 1. huge silences
def test_a_268m_tick_silence_is_capped_in_both_encodings(tmp_path):
    f = tmp_path / "silence.mid"
    f.write_bytes(raw_midi([note(HUGE, dur=1)], tpq=1))  # one beat per tick: 268M beats of silence
    t0 = time.perf_counter()
    ids = CHORD.encode_file(f)  # was 33.5M SHIFT tokens
    assert chord_tokens(ids) == ["BOS", "TEMPO_120"] + ["SHIFT_96"] * 8 + ["NOTE_60", "DUR_12", "EOS"]
    perf = get_encoding("performance")
    pids = perf.encode_file(f)  # was out of memory
    assert pids.size < 40
    back = perf.decode(pids)
    assert back.tracks[0].notes[0].time == MAX_SILENCE_BEATS * back.ticks_per_quarter
    assert time.perf_counter() - t0 < 5

    eight = tmp_path / "eight.mid"  # 8 x 268M ticks: 268M tokens before
    eight.write_bytes(raw_midi([note(HUGE, 60 + i, dur=1) for i in range(8)], tpq=1))
    for enc in (CHORD, perf):
        assert enc.encode_file(eight).size < 100


def test_silence_rule_moves_later_notes_and_tempo_changes_earlier():
    cap = MAX_SILENCE_BEATS
    # a rest of 199 beats after a one-beat note; tempo changes at beat 30 (inside the kept part) and 150
    score = make_score([(0, 480, 60), (480 * 200, 480, 62)], tempos=[(0, 120.0), (480 * 30, 97.0),
                                                                      (480 * 150, 151.0)])
    q = CHORD.decode_quantized(CHORD.encode(score))
    assert q["onset"].tolist() == [0, (1 + cap) * 12]
    assert q["tempo_step"].tolist() == [0, 30 * 12, (1 + cap) * 12]
    # a note held through a long stretch where nothing starts or ends is shortened with it
    n = cap_silences(score_notes(make_score([(0, 480 * 200, 60), (480 * 300, 480, 62)])))
    assert n.onset.tolist() == [0, 480 * 2 * cap] and n.duration.tolist() == [480 * cap, 480]
    # exactly the cap, or anything shorter, is untouched
    ok = make_score([(0, 480, 60), (480 * (1 + cap), 480, 62)])
    assert CHORD.decode_quantized(CHORD.encode(ok))["onset"].tolist() == [0, (1 + cap) * 12]


def test_existing_long_gap_behaviour_is_kept():
    """Gaps below the cap still use several SHIFTs (49 beats of rest: 600 steps = 6 x 96 + 24)."""
    toks = chord_tokens(CHORD.encode(make_score([(0, 480, 60), (480 * 50, 480, 62)])))
    assert toks.count("SHIFT_96") == 6 and "SHIFT_24" in toks


@pytest.mark.parametrize("name", ["chord", "performance", "meter"])
def test_token_budget_rejects_a_file_that_is_mostly_tempo_changes(name):
    notes = [(480 * 60 * i, 480, 60 + i) for i in range(12)]
    spam = [(120 * k, 100.0 if k % 2 else 140.0) for k in range(480 * 60 * 12 // 120)]
    with pytest.raises(MidiReadError, match=f"tokens for 12 notes, more than the {TOKENS_PER_NOTE} per note"):
        get_encoding(name).encode(make_score(notes, tempos=spam))
    # the same notes with a sane tempo map are fine
    assert get_encoding(name).encode(make_score(notes)).size < TOKENS_PER_NOTE * 12 + TOKENS_BASE


# ---------------------------------------------------------------------- 2. timing that cannot be used
def test_zero_ticks_per_quarter_smpte_and_overflowing_times_have_reasons(tmp_path):
    cases = {
        "tpq0.mid": (raw_midi([note(0), note(10)], tpq=0), "ticks per quarter is 0"),
        "smpte.mid": (raw_midi([note(0)], tpq=0xE728), "SMPTE time division"),
        "overflow.mid": (raw_midi([note(HUGE) for _ in range(9)]), "time beyond 2**31 ticks"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        for enc in (CHORD, get_encoding("performance"), get_encoding("meter")):
            with pytest.raises(MidiReadError, match=reason.replace("*", r"\*")):
                enc.encode_file(tmp_path / name)
    with pytest.raises(MidiReadError, match="ticks per quarter is 0"):  # a score made in memory
        CHORD.encode(make_score([(0, 1, 60)], tpq=0))


# ---------------------------------------------------------------------- 3. + 4. names
def test_any_case_of_the_suffix_and_non_utf8_names_are_read(tmp_path, capsys):
    src = tmp_path / "m"
    src.mkdir()
    data = make_score(scale_melody(1, 30)).dumps_midi()
    names = [b"a.mid", b"b.Mid", b"c.MIDI", b"d.midi", b"e.mId", b"caf\xe9.mid", b"\xff\xfe.MID"]
    for n in names:
        with open(os.path.join(os.fsencode(src), n), "wb") as fh:
            fh.write(data)
    ref = CHORD.encode_file(src / "a.mid")
    for p in find_midi_files(src):
        np.testing.assert_array_equal(CHORD.encode_file(p), ref)
    assert main(["data", "-d", str(src), "-o", str(tmp_path / "ds"), "--workers", "2"]) == 0
    m = load_manifest(tmp_path / "ds")
    assert m.files_used == len(names) and m.files_skipped == 0
    assert "caf\udce9.mid" in {f["file"] for f in m.files}
    assert "files found 7, used 7, skipped 0" in capsys.readouterr().out
    json.loads((tmp_path / "ds" / "manifest.json").read_text())  # plain ASCII JSON


def test_generate_with_a_non_utf8_primer_name(tmp_path, tiny_checkpoint, capsys):
    primer = os.path.join(os.fsencode(tmp_path), b"caf\xe9.mid")
    with open(primer, "wb") as fh:
        fh.write(make_score(scale_melody(2, 30)).dumps_midi())
    out = tmp_path / "out"
    rc = main(["generate", "-c", str(tiny_checkpoint), "--primer", os.fsdecode(primer), "-n", "8", "--no-wav",
               "-s", "0", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    made = sorted(os.listdir(os.fsencode(out)))
    assert made == [b"caf\xe9_gru_seed0_0" + s for s in (b".json", b".mid", b".png")]
    side = json.loads((out / "caf\udce9_gru_seed0_0.json").read_text())
    assert side["primer"] == os.fsdecode(primer)


# ---------------------------------------------------------------------- 5. workers that die or take too long
def _victims(monkeypatch, doomed: dict[str, object]) -> None:
    """Make reading the named files misbehave in the workers (they are forked after this patch)."""
    real = base.load_score

    def load(path):
        act = doomed.get(Path(path).name)
        if act is not None:
            act()
        return real(path)

    monkeypatch.setattr(base, "load_score", load)


def test_a_worker_that_dies_costs_only_its_file(tiny_midi_dir, monkeypatch):
    files = find_midi_files(tiny_midi_dir)
    clean = tokenize_files(files, CHORD, workers=2, quiet=True)
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    _victims(monkeypatch, {files[0].name: die, files[5].name: die, files[-1].name: die})
    results = tokenize_files(files, CHORD, workers=2, quiet=True)
    for i, ((ids, reason), (ref, _)) in enumerate(zip(results, clean)):
        if i in (0, 5, len(files) - 1):
            assert ids is None and reason == "worker died while reading it (killed by SIGKILL, perhaps out of memory)"
        else:
            assert reason is None and np.array_equal(ids, ref)  # in input order, unchanged


def test_a_dead_worker_is_listed_in_the_manifest(tiny_midi_dir, tmp_path, monkeypatch):
    victim = find_midi_files(tiny_midi_dir)[3]
    _victims(monkeypatch, {victim.name: lambda: os._exit(3)})
    m = build_dataset(tiny_midi_dir, tmp_path / "ds", workers=2, quiet=True)
    assert m.files_used == 11
    assert m.skipped == [{"file": victim.relative_to(tiny_midi_dir).as_posix(),
                          "reason": "worker died while reading it (exit code 3)"}]


def test_time_and_memory_budgets_per_file(tiny_midi_dir, monkeypatch):
    files = find_midi_files(tiny_midi_dir)[:6]

    def stubborn():  # ignores the worker's own alarm: the parent stops it
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        time.sleep(60)

    _victims(monkeypatch, {files[0].name: lambda: time.sleep(60), files[1].name: stubborn,
                           files[2].name: lambda: np.ones(2**28)})  # 2 GiB
    monkeypatch.setattr(build, "_GRACE", 0.5)
    t0 = time.perf_counter()
    results = tokenize_files(files, CHORD, workers=2, quiet=True, seconds=1, memory=256 * 2**20)
    assert time.perf_counter() - t0 < 10
    reasons = [r for _, r in results]
    assert reasons[:3] == ["took longer than 1 s", "took longer than 1 s (stopped)",
                           "needed more than 0.25 GiB of memory"]
    assert reasons[3:] == [None] * 3


# ---------------------------------------------------------------------- 6. the fuzzing campaign
def _mutants(seeds: list[bytes], rng: np.random.Generator) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for s, data in enumerate(seeds):
        b = bytearray(data)
        for k in range(8):  # byte flips
            m = bytearray(b)
            for pos in rng.integers(0, len(m), int(rng.integers(1, 9))):
                m[pos] ^= int(rng.integers(1, 256))
            out[f"flip/{s}_{k}.mid"] = bytes(m)
        for k, cut in enumerate(rng.integers(1, len(b), 4)):  # truncation
            out[f"trunc/{s}_{k}.mid"] = bytes(b[:cut])
        trk = b.find(b"MTrk") + 4
        for k, length in enumerate([0, 1, 0xFFFFFFFF, len(b) * 100]):  # chunk lengths
            m = bytearray(b)
            m[trk:trk + 4] = length.to_bytes(4, "big")
            out[f"chunk/{s}_trk{k}.mid"] = bytes(m)
            m = bytearray(b)
            m[4:8] = length.to_bytes(4, "big")
            out[f"chunk/{s}_hdr{k}.mid"] = bytes(m)
        for k, tpq in enumerate([0, 1, 0x7FFF, 0x8000, 0xE728]):  # time division
            m = bytearray(b)
            m[12:14] = tpq.to_bytes(2, "big")
            out[f"tpq/{s}_{k}.mid"] = bytes(m)
        m = bytearray(b)  # a huge delta time (an empty text event) in front of the first event
        m[trk + 4:trk + 4] = vlq(HUGE) + b"\xff\x01\x00"
        m[trk:trk + 4] = (int.from_bytes(b[trk:trk + 4], "big") + 7).to_bytes(4, "big")
        out[f"delta/{s}_front.mid"] = bytes(m)
    return out


def _synthetic(rng: np.random.Generator) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k in range(1, 20):  # k huge silences at several resolutions: capped, or beyond 2**31 ticks
        for tpq in (1, 96, 480):
            out[f"silence/{k}_{tpq}.mid"] = raw_midi([note(HUGE, 40 + k, dur=1) for _ in range(k)], tpq=tpq)
    out["silence/held.mid"] = raw_midi([note(0, 60, dur=HUGE)], tpq=1)
    out["silence/tempo_far.mid"] = raw_midi([note(0), tempo(HUGE, 500000), tempo(HUGE, 400000)], tpq=1)
    out["tempo/zero_mspq.mid"] = raw_midi([tempo(0, 0), note(0), note(480)])
    out["tempo/spam.mid"] = raw_midi([tempo(1, 400000 + 1000 * (i % 2)) for i in range(20000)] + [note(0)])
    out["vlq/long.mid"] = raw_midi([b"\xff\xff\xff\xff\x7f" + bytes([0x90, 60, 90]), note(10)])
    out["vlq/unfinished.mid"] = raw_midi([b"\xff\xff\xff\xff"])
    out["notes/velocity0.mid"] = raw_midi([vlq(0) + bytes([0x90, 60, 0]), note(0)])
    out["notes/high_bits.mid"] = raw_midi([vlq(0) + bytes([0x90, 0xC8, 0xFF]) + vlq(10) + bytes([0x80, 0xC8, 0])])
    out["notes/unterminated.mid"] = raw_midi([vlq(0) + bytes([0x90, 60, 90])])
    out["notes/running_status.mid"] = raw_midi([vlq(0) + bytes([0x90, 60, 90]) + vlq(0) + bytes([62, 90])
                                                + vlq(480) + bytes([60, 0]) + vlq(0) + bytes([62, 0])])
    out["notes/many_tracks_hdr.mid"] = raw_midi([note(0)])[:10] + (60000).to_bytes(2, "big") + \
        raw_midi([note(0)])[12:]
    for k in range(8):
        out[f"garbage/raw{k}.mid"] = rng.bytes(int(rng.integers(1, 3000)))
        out[f"garbage/mthd{k}.mid"] = b"MThd" + rng.bytes(int(rng.integers(0, 3000)))
    out["garbage/header_only.mid"] = raw_midi([])[:14]
    out["garbage/text.midi"] = b"this is not a MIDI file\n"
    for k in range(3):
        out[f"empty/e{k}.mid"] = b""
    return out


def _write_corpus(root: Path) -> tuple[int, list[Path]]:
    """The campaign's folder; returns (files made, the folders named like MIDI files)."""
    rng = np.random.default_rng(0)
    seeds = [make_score(scale_melody(i, n=10 + 3 * i), tempos=[(0, 100.0 + 10 * i), (480, 90.0)]).dumps_midi()
             for i in range(8)]
    files = {**_mutants(seeds, rng), **_synthetic(rng)}
    for i, data in enumerate(seeds):
        files[f"good/piece{i}{['.mid', '.MID', '.Mid', '.midi', '.MIDI'][i % 5]}"] = data
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    bad_names = root / "names"
    bad_names.mkdir()
    for k, data in enumerate([seeds[0], seeds[1][:40], b"", seeds[2]]):
        with open(os.path.join(os.fsencode(bad_names), b"n\xe9\xff%d.mid" % k), "wb") as fh:
            fh.write(data)
    made = len(files) + 4
    dirs = [root / "dirs" / "x.mid", root / "dirs" / "y.MIDI"]
    for d in dirs:
        d.mkdir(parents=True)
        (d / "inner.txt").write_text("a folder, not a file")
    if os.geteuid() != 0:  # root reads anything: chmod cannot make a file unreadable there
        locked = root / "locked.mid"
        locked.write_bytes(seeds[3])
        locked.chmod(0)
        made += 1
    return made, dirs


BUILD_SCRIPT = """
import json, resource, sys, time
from musesynth.data.build import build_dataset
src, out = sys.argv[1], sys.argv[2]
t = {}
for enc in ("chord", "performance", "meter"):
    t0 = time.perf_counter()
    build_dataset(src, f"{out}/{enc}", encoding=enc, workers=2, quiet=True)
    t[enc] = time.perf_counter() - t0
print(json.dumps({"seconds": t, "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    src = root / "midi"
    made, dirs = _write_corpus(src)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(src), str(root / "ds")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    stats = json.loads(r.stdout.strip().splitlines()[-1])
    return src, root / "ds", made, stats


def test_fuzzed_folder_builds_in_bounded_time_memory_and_tokens(campaign):
    src, ds, made, stats = campaign
    dirs = [src / "dirs" / "x.mid", src / "dirs" / "y.MIDI"]
    assert made >= 250
    assert stats["self_kb"] < 1.5 * 2**20 and stats["children_kb"] < 1.5 * 2**20, stats
    assert sum(stats["seconds"].values()) < 60, stats
    for enc in ("chord", "performance", "meter"):
        m = load_manifest(ds / enc)
        assert m.files_found == made + len(dirs)  # folders named x.mid are reported as skipped, not read
        assert m.files_used + m.files_skipped == made + len(dirs)
        assert {s["file"] for s in m.skipped if "a folder" in s["reason"]} == {d.relative_to(src).as_posix()
                                                                               for d in dirs}
        assert all(isinstance(s["reason"], str) and s["reason"].strip() for s in m.skipped)
        assert not any("Traceback" in s["reason"] for s in m.skipped)
        assert m.files_used >= 20  # the good files, and every mutant that still parses
        total_tokens = total_notes = 0
        for f in m.files:
            notes = len(score_notes(load_score(src / f["file"])))
            assert f["tokens"] <= TOKENS_PER_NOTE * notes + TOKENS_BASE, f
            total_tokens += f["tokens"]
            total_notes += notes
        assert total_tokens < 200 * total_notes + 10_000
        reasons = {s["file"]: s["reason"] for s in m.skipped}
        assert reasons["empty/e0.mid"] == "empty file (0 bytes)"
        assert reasons["silence/19_480.mid"].startswith("time beyond 2**31 ticks")
        assert "silence/1_1.mid" not in reasons and "silence/held.mid" not in reasons
        assert all(f"good/piece{i}" not in " ".join(reasons) for i in range(8))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import torch

    from musesynth.models import ModelConfig, build_model
    from musesynth.training.checkpoint import CheckpointMeta, save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig("gru", len(CHORD.vocab), embed_dim=16, hidden_dim=32, num_layers=1, seq_len=64)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model(cfg), CheckpointMeta(model_config=cfg, vocab=CHORD.vocab))
    return path


def test_generate_over_a_fuzzed_primer_folder(campaign, tiny_checkpoint, tmp_path, capsys):
    src, ds, _, _ = campaign
    used = {f["file"] for f in load_manifest(ds / "chord").files}
    primers = tmp_path / "primers"
    primers.mkdir()
    picked = [p for p in find_midi_files(src) if p.parent.name in ("good", "silence", "names", "tpq", "chunk")]
    picked = list(dict.fromkeys(picked[::3] + [p for p in picked if p.parent.name == "names"]))
    good = set()
    for i, p in enumerate(picked):
        name = f"{i:03d}_{p.name}"  # unique stems
        shutil.copyfile(p, primers / name)
        if p.relative_to(src).as_posix() in used:
            good.add(Path(name).stem)
    assert 5 <= len(good) < len(picked)
    out = tmp_path / "out"
    rc = main(["generate", "-c", str(tiny_checkpoint), "--primer", str(primers), "-n", "8", "--no-wav", "--no-png",
               "-s", "0", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0 and "Traceback" not in captured.err
    skipped = [line for line in captured.out.splitlines() if line.startswith("skipped: cannot use primer")]
    assert len(skipped) == len(picked) - len(good)
    assert all(line.split("': ", 1)[1].strip() for line in skipped)  # each with its reason
    written = {p.name[: -len("_gru_seed0_0.mid")] for p in out.glob("*.mid")}
    assert written == good
