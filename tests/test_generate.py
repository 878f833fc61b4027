from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import make_score

from musesynth.cli import main
from musesynth.generate.render import wav_stats
from musesynth.generate.sampling import Sampling, filter_logits, generate
from musesynth.models import ModelConfig, build_model
from musesynth.tokenize import get_encoding
from musesynth.training.config import TrainConfig
from musesynth.training.loop import train

TINY = dict(seq_len=32, embed_dim=32, hidden_dim=64, num_layers=2, batch_size=16, lr=3e-3, warmup_steps=5,
            tensorboard=False, quiet=True, patience=0, epochs=1)


@pytest.fixture(scope="module")
def runs(bach_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for fam in ("gru", "lstm", "transformer"):
        train(TrainConfig(dataset=str(bach_dataset), model=fam, out_dir=str(root), **TINY))
    return root


@pytest.fixture(scope="module")
def primer(bach_dir):
    return sorted(bach_dir.rglob("*.mid"))[0]


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_cache_and_no_cache_give_the_same_logits(family):
    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 312, embed_dim=32, hidden_dim=64, num_layers=2, seq_len=64)).eval()
    x = torch.randint(0, 312, (3, 40))
    full, _ = model(x)
    logits, state = model(x[:, :10])
    steps = [logits]
    for i in range(10, 40):
        out, state = model(x[:, i : i + 1], state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["gru", "transformer"])
def test_cached_and_naive_generation_agree(family):
    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 312, embed_dim=32, hidden_dim=64, num_layers=2, seq_len=200)).eval()
    enc = get_encoding("chord")
    kw = dict(num_tokens=60, num_samples=2, grammar=enc.grammar(), eos_id=enc.eos_id, seed=3, seq_len=200)
    a = generate(model, [enc.bos_id], use_cache=True, **kw)
    b = generate(model, [enc.bos_id], use_cache=False, **kw)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_transformer_static_cache_matches_full_passes_in_and_past_the_context():
    """The in-place ring cache: one-token steps, a chunk after steps and steps past ``seq_len``. With one
    layer a key depends only on its token and position, so step t must equal a fresh pass over the
    tokens it attends to: itself and the ``seq_len`` before it (as the torch.cat cache did)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig("transformer", 312, embed_dim=32, hidden_dim=64, num_layers=1, seq_len=16))
    model.eval()
    x = torch.randint(0, 312, (2, 60))
    with torch.no_grad():
        logits, state = model(x[:, :5])
        for i in range(5, 12):
            logits, state = model(x[:, i : i + 1], state)
        chunk, state = model(x[:, 12:15], state)  # several tokens after a cache
        torch.testing.assert_close(chunk, model(x[:, :15])[0][:, 12:], atol=1e-5, rtol=1e-4)
        for i in range(15, 60):
            logits, state = model(x[:, i : i + 1], state)
            ref, _ = model(x[:, max(0, i - 16) : i + 1])
            torch.testing.assert_close(logits[:, 0], ref[:, -1], atol=1e-5, rtol=1e-4)


def test_shipped_model_logits_unchanged_and_fast_decoding_same_tokens():
    """The shipped weights give the logits recorded when they were exported (a full pass; 1e-5), and cached
    decoding gives the naive path's tokens for the same seed. (The Transformer's static cache is checked
    against full passes in test_transformer_static_cache_*; the recorded values follow the shipped model.)"""
    from musesynth.training.checkpoint import load_model
    from musesynth.training.shipped import DEFAULT_MODEL

    model, enc, meta = load_model(DEFAULT_MODEL)
    x = torch.randint(3, len(enc.vocab), (2, 600), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full, _ = model(x)
    recorded = [-1.4689322710037231, 1.4620590209960938, 1.7528326511383057, -3.396577835083008]
    torch.testing.assert_close(full[0, -1, :4], torch.tensor(recorded), atol=1e-5, rtol=1e-5)
    assert abs(full.double().mean().item() - -2.210312960743297) < 1e-5
    kw = dict(num_tokens=40, grammar=enc.grammar(), eos_id=enc.eos_id, seed=5, seq_len=meta.model_config.seq_len)
    a = generate(model, [enc.bos_id], use_cache=True, **kw)[0]
    b = generate(model, [enc.bos_id], use_cache=False, **kw)[0]
    np.testing.assert_array_equal(a, b)


def test_transformer_generates_past_its_context_with_a_sliding_window():
    model = build_model(ModelConfig("transformer", 312, embed_dim=32, hidden_dim=64, num_layers=1, seq_len=16))
    enc = get_encoding("chord")
    out = generate(model.eval(), [enc.bos_id], 100, grammar=enc.grammar(), seed=0)[0]
    assert out.size == 101
    _, state = model(torch.as_tensor(out[None]))
    assert state["kv"][0][0].shape[2] == 16


def test_filters():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, Sampling(top_k=2))[0, 2:]).all()
    p = filter_logits(logits, Sampling(top_p=0.7)).softmax(-1)[0]
    assert p[0] > 0 and p[1] > 0 and p[2] == 0  # 0.665 < 0.7, so the second token stays too
    allowed = torch.tensor([[False, True, True, True]])
    assert torch.isinf(filter_logits(logits, Sampling(), allowed)[0, 0])


def test_draw_is_torch_multinomial():
    from musesynth.generate.sampling import draw

    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for i in range(500):
        logits = torch.randn(1 + i % 4, 40 + i % 300) * (1 + i % 5)
        logits[:, : i % 30] = float("-inf")
        p = logits.softmax(-1)
        assert torch.equal(torch.multinomial(p, 1, generator=g1).squeeze(1), draw(p, g2))


class _NoConstraint:
    """A constraint that narrows nothing: sends the sampler down its boolean-mask path."""

    def allowed(self, allowed, prev):
        return allowed

    def advance(self, tok):
        pass


class _EagerToEnd(torch.nn.Module):
    """A model that would end every piece within a few tokens: EOS gets +6 log-odds."""

    def __init__(self, inner: torch.nn.Module, eos: int) -> None:
        super().__init__()
        self.inner, self.eos = inner, eos

    def forward(self, tokens, state=None):
        logits, state = self.inner(tokens, state)
        return logits.index_add(-1, torch.tensor([self.eos]), torch.full_like(logits[..., :1], 6.0)), state


def test_with_the_ending_on_no_piece_ends_before_the_ramp_starts():
    """Issue 24: pieces of 3 bars. The ending ramp's start is a piece's minimum length; with the ending off the
    model ends a piece where it likes."""
    torch.manual_seed(0)
    enc = get_encoding("chord")
    model = _EagerToEnd(build_model(ModelConfig("gru", 312, embed_dim=16, hidden_dim=32, num_layers=1)), enc.eos_id)
    args = dict(num_samples=8, grammar=enc.grammar(), eos_id=enc.eos_id, seed=1)
    free = generate(model.eval(), [enc.bos_id], 100, sampling=Sampling(ending=0.0), **args)
    assert min(s.size for s in free) < 30  # left alone, this model ends early
    held = generate(model, [enc.bos_id], 100, sampling=Sampling(), **args)  # plain ramp: the last 30 of 100
    assert len(held) == 8 and min(s.size for s in held) >= 1 + 70 + 1  # BOS, 70 held tokens, then the ramp


@pytest.mark.parametrize("sampling", [Sampling(), Sampling(temperature=0.7, top_k=20, top_p=0.9)])
def test_the_additive_grammar_path_draws_the_masked_paths_tokens(sampling):
    torch.manual_seed(2)
    model = build_model(ModelConfig("gru", 312, embed_dim=16, hidden_dim=32, num_layers=1)).eval()
    enc = get_encoding("chord")
    args = dict(num_samples=4, sampling=sampling, grammar=enc.grammar(), eos_id=enc.eos_id, seed=5)
    fast = generate(model, [enc.bos_id], 200, **args)
    masked = generate(model, [enc.bos_id], 200, constraint=_NoConstraint(), **args)
    assert len(fast) == len(masked) == 4 and all(np.array_equal(a, b) for a, b in zip(fast, masked))


def test_every_sampled_sequence_decodes_and_obeys_the_grammar():
    torch.manual_seed(1)
    model = build_model(ModelConfig("lstm", 312, embed_dim=16, hidden_dim=32, num_layers=1)).eval()
    enc = get_encoding("chord")
    g = enc.grammar()
    seqs = generate(model, [enc.bos_id], 300, num_samples=8, grammar=g, eos_id=enc.eos_id, seed=0,
                    sampling=Sampling(temperature=1.5))
    for s in seqs:
        assert g[s[:-1], s[1:]].all()
        score = enc.decode(s)
        assert score.note_num() > 0
        score.dumps_midi()


def test_the_ending_draws_pieces_to_a_close_inside_the_budget_and_changes_nothing_before():
    """--ending adds log-odds to EOS over the budget's last 30% and holds it off before: more pieces end before
    the limit, none before the ramp, and every token drawn before the ramp starts is the one drawn without it
    (same seed) up to where that one ended."""
    torch.manual_seed(3)
    model = build_model(ModelConfig("gru", 312, embed_dim=16, hidden_dim=32, num_layers=1)).eval()
    enc = get_encoding("chord")
    args = dict(num_samples=16, grammar=enc.grammar(), eos_id=enc.eos_id, seed=2)
    off = generate(model, [enc.bos_id], 100, sampling=Sampling(ending=0.0), **args)
    on = generate(model, [enc.bos_id], 100, sampling=Sampling(ending=20.0), **args)
    ended = lambda seqs: sum(s[-1] == enc.eos_id for s in seqs)  # noqa: E731
    assert ended(on) > ended(off) and ended(on) >= 14 and len(off) == len(on) == 16
    for a, b in zip(off, on):  # BOS + the 70 tokens before the last 30 of 100: the same, up to where `off` ended
        early = np.flatnonzero(a[1:71] == enc.eos_id)
        n = 1 + (int(early[0]) if early.size else 70)
        np.testing.assert_array_equal(a[:n], b[:n])
        assert b.size >= 72 and enc.eos_id not in b[1:71]  # before the ramp, EOS is held off
    assert generate(model, [enc.bos_id], 100, sampling=Sampling(ending=20.0), ending=False, **args)[0].size == \
        off[0].size  # an infill's fill: the constraint decides where it ends


def test_fixed_seed_same_piece(runs, primer, tmp_path):
    args = ["generate", "-c", str(runs / "gru"), "--primer", str(primer), "-n", "80", "-k", "20", "-s", "7",
            "--no-wav", "-q"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / f"{primer.stem}_gru_seed7_0.mid").read_bytes()
    assert a == (tmp_path / "b" / f"{primer.stem}_gru_seed7_0.mid").read_bytes()
    assert main([*args[:-4], "-s", "8", "--no-wav", "-q", "-o", str(tmp_path / "c")]) == 0
    assert a != (tmp_path / "c" / f"{primer.stem}_gru_seed8_0.mid").read_bytes()


def test_without_a_seed_each_run_is_a_new_piece_that_its_printed_seed_makes_again(runs, tmp_path, capsys):
    args = ["generate", "-c", str(runs / "gru"), "-n", "60", "--no-wav", "--no-png"]
    seeds = []
    for run in ("a", "b"):
        assert main([*args, "-o", str(tmp_path / run)]) == 0
        seeds.append(int(re.search(r"^seed (\d+) ", capsys.readouterr().out, re.M).group(1)))
        side = json.loads(next((tmp_path / run).glob("*.json")).read_text())
        assert side["sampling"]["seed"] == seeds[-1]
    assert seeds[0] != seeds[1]
    assert main([*args, "-s", str(seeds[0]), "-o", str(tmp_path / "again")]) == 0
    name = f"unconditioned_gru_seed{seeds[0]}_0.mid"
    assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()


def test_a_run_without_best_pt_says_it_uses_last_pt(runs, tmp_path, capsys):
    run = tmp_path / "stopped"
    run.mkdir()
    (run / "last.pt").write_bytes((runs / "gru" / "best.pt").read_bytes())
    assert main(["generate", "-c", str(run), "-n", "5", "-s", "1", "--no-wav", "--no-png", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"note: {run} has no best.pt" in out and "using its last.pt" in out


def test_an_empty_out_dir_is_refused(runs, capsys):
    assert main(["generate", "-c", str(runs / "gru"), "-n", "5", "-o", ""]) == 2
    assert "-o/--out-dir is empty" in capsys.readouterr().err


@pytest.mark.parametrize("family", ["gru", "lstm", "transformer"])
def test_a_checkpoint_of_each_family_generates_all_outputs(family, runs, primer, tmp_path, capsys):
    rc = main(["generate", "-c", str(runs / family), "--primer", str(primer), "--primer-tokens", "20",
               "-n", "120", "--num-samples", "2", "-o", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    seed = int(re.search(r"^seed (\d+) \(make these pieces again with -s \d+\)$", out, re.M).group(1))
    base = tmp_path / f"{primer.stem}_{family}_seed{seed}_1"  # no -s: a fresh seed, printed and in the names
    side = json.loads((tmp_path / (base.name + ".json")).read_text())
    assert side["primer_tokens"] == 20 and side["sampling"]["seed"] == seed and side["model"] == family
    assert side["sampling"]["ending"] == 8.0  # the default it used (chord encoding: the plain ramp), not null
    assert (tmp_path / (base.name + ".mid")).is_file() and (tmp_path / (base.name + ".png")).is_file()
    if side["wav"]:
        stats = wav_stats(tmp_path / (base.name + ".wav"))
        assert stats["seconds"] > 1 and stats["rms"] > 1e-3
    else:
        assert "fluidsynth" in side["wav_skipped"] or "soundfont" in side["wav_skipped"]
    assert str(tmp_path / (base.name + ".mid")) in out


def test_unconditioned_and_primer_folder(runs, bach_dir, tmp_path):
    assert main(["generate", "-c", str(runs / "lstm"), "-n", "50", "--no-wav", "--no-png", "-q", "-s", "0",
                 "-o", str(tmp_path / "u")]) == 0
    assert (tmp_path / "u" / "unconditioned_lstm_seed0_0.mid").is_file()
    folder = tmp_path / "primers"
    folder.mkdir()
    for f in sorted(bach_dir.rglob("*.mid"))[:2]:
        (folder / f.name).write_bytes(f.read_bytes())
    assert main(["generate", "-c", str(runs / "lstm"), "--primer", str(folder), "--primer-seconds", "1",
                 "-n", "30", "--no-wav", "--no-png", "-q", "-o", str(tmp_path / "f")]) == 0
    assert len(list((tmp_path / "f").glob("*.mid"))) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--primer-tokens", "500"], "longer than the model context of 32 tokens"),
        (["--primer", "MISSING"], "primer not found"),
        (["-t", "0"], "--temperature must be a positive number"),
        (["-s", "-1"], "--seed must be a whole number, 0 or more"),
        (["--ending", "30"], "--ending must be a number in [0, 20]"),
    ],
)
def test_generation_errors(extra, message, runs, primer, tmp_path, capsys):
    argv = ["generate", "-c", str(runs / "gru"), "--primer", str(primer), "-o", str(tmp_path), *extra]
    if "MISSING" in extra:
        argv = ["generate", "-c", str(runs / "gru"), "--primer", str(tmp_path / "nope.mid"), "-o", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["generate", "-c", str(tmp_path / "nothing"), "-o", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize("meter", [(3, 4), (6, 8)])
def test_output_midi_keeps_the_primers_meter_and_marks_where_generation_starts(meter, runs, tmp_path):
    import symusic
    from conftest import make_score, scale_melody

    from musesynth.generate.midi_out import GENERATED_MARKER

    score = make_score(scale_melody(1, 40))
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    path = tmp_path / "in_3.mid"
    score.dump_midi(str(path))
    assert main(["generate", "-c", str(runs / "gru"), "--primer", str(path), "--primer-tokens", "20", "-n", "40",
                 "--no-wav", "--no-png", "-q", "-o", str(tmp_path / "o")]) == 0
    out = symusic.Score(str(next((tmp_path / "o").glob("*.mid"))))
    ts = out.time_signatures.numpy()
    assert (ts["numerator"][0], ts["denominator"][0]) == meter
    markers = [m for m in out.markers if m.text == GENERATED_MARKER]
    assert len(markers) == 1 and markers[0].time > 0
    assert out.tracks[0].name == "Piano" and out.tracks[0].program == 0


class _ScriptedModel(torch.nn.Module):
    """Logits that favour fixed tokens (the same at every step): a model whose choices a test knows."""

    def __init__(self, vocab_size: int, favour: dict[int, float]) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.bias = torch.zeros(vocab_size)
        for tok, v in favour.items():
            self.bias[tok] = v

    def forward(self, x, state=None):
        return self.bias.expand(x.shape[0], x.shape[1], -1).clone(), None


def _bar_contents(enc, ids) -> list[np.ndarray]:
    """Each bar's tokens after its BAR, without repeat marks."""
    ids = np.asarray(ids)
    ids = ids[(enc.repeat_of[ids] == 0) & (enc.run_of[ids] == 0) & (ids != enc.eos_id)]
    return [b[1:] for b in np.split(ids, np.flatnonzero(ids == enc.bar_id))[1:]]


def test_a_written_repeat_copies_its_passage_exactly_and_closes_it():
    """A model that writes BAR REPEAT_k RUN_n gets the n bars from k bars back copied token by token,
    then a bar line; the copy may overlap what it writes (k < n); a REPEAT pointing before the first bar
    copies nothing; without the spec the model samples freely."""
    enc = get_encoding("meter")
    a = [(0, 480, 60), (480, 240, 64), (720, 240, 65), (960, 960, 67)]
    b = [(0, 1440, 55), (1440, 480, 59)]
    notes = [(i * 1920 + t, d, p) for i, bar in enumerate([a, b]) for t, d, p in bar]
    primer = enc.encode(make_score(notes))[:-1]  # without EOS
    bar_a, bar_b = _bar_contents(enc, primer)
    v = enc.vocab.id
    model = _ScriptedModel(len(enc.vocab), {v("REPEAT_2"): 20.0, v("RUN_2"): 20.0, enc.bar_id: 10.0})
    seqs = generate(model, primer, 300, 3, Sampling(), enc.grammar(), enc.eos_id, seed=1, repeats=enc.repeat_spec())
    for seq in seqs:
        bars = _bar_contents(enc, seq)[2:-1]  # the generated bars but the last (cut by the length)
        assert len(bars) > 8
        for i, bar in enumerate(bars):
            assert np.array_equal(bar, bar_a if i % 2 == 0 else bar_b), f"bar {i}: the bar two back, note for note"
        marks = [enc.vocab.tokens[t] for t in seq[len(primer):] if enc.repeat_of[t] or enc.run_of[t]]
        assert marks[:4] == ["REPEAT_2", "RUN_2"] * 2  # one mark per passage of two bars
    # overlapping: REPEAT_1 RUN_3 repeats the last bar three times, and again
    model = _ScriptedModel(len(enc.vocab), {v("REPEAT_1"): 20.0, v("RUN_3"): 20.0, enc.bar_id: 10.0})
    seq = generate(model, primer, 200, 1, Sampling(), enc.grammar(), enc.eos_id, seed=2, repeats=enc.repeat_spec())[0]
    bars = _bar_contents(enc, seq)[2:-1]
    assert len(bars) > 6 and all(np.array_equal(bar, bar_b) for bar in bars)
    # REPEAT_64 with fewer bars copies nothing; the model goes on writing (here: more notes)
    far = _ScriptedModel(len(enc.vocab), {v("REPEAT_64"): 20.0, v("RUN_1"): 20.0, enc.bar_id: 10.0,
                                          v("POS_0"): 5.0, v("NOTE_60"): 5.0})
    seq = generate(far, primer, 40, 1, Sampling(), enc.grammar(), enc.eos_id, repeats=enc.repeat_spec())[0]
    assert v("REPEAT_64") in seq[len(primer):] and v("NOTE_60") in seq[len(primer):]
    # free sampling (no spec): the same seed writes other tokens after the marks
    model = _ScriptedModel(len(enc.vocab), {v("REPEAT_2"): 20.0, v("RUN_2"): 20.0, enc.bar_id: 10.0})
    free = generate(model, primer, 300, 3, Sampling(), enc.grammar(), enc.eos_id, seed=1)
    assert not all(np.array_equal(f, s) for f, s in zip(free, seqs))


@pytest.mark.parametrize("meter", [(3, 4), (6, 8)])
def test_a_primer_cut_by_seconds_keeps_its_meter_and_tempo_map(meter, tmp_path):
    """The shipped (meter-encoded) model and --primer-seconds: what a DAW reads back is the primer's meter and
    tempo (bins of 2^(1/12)), a named piano track with program 0 and velocities, and the marker."""
    import symusic
    from conftest import make_score, scale_melody

    from musesynth.generate.midi_out import GENERATED_MARKER

    score = make_score(scale_melody(1, 40), tempos=[(0, 90.0), (480 * 6, 140.0)])
    score.time_signatures.append(symusic.TimeSignature(0, *meter))
    score.dump_midi(str(tmp_path / "in.mid"))
    assert main(["generate", "--primer", str(tmp_path / "in.mid"), "--primer-seconds", "8", "-n", "30", "--no-wav",
                 "--no-png", "-q", "--device", "cpu", "-o", str(tmp_path / "o")]) == 0
    out = symusic.Score(str(next((tmp_path / "o").glob("*.mid"))))
    assert [(t.time, t.numerator, t.denominator) for t in out.time_signatures][0] == (0, *meter)
    tempos = [(t.time * 480 // out.ticks_per_quarter, round(t.qpm)) for t in out.tempos]
    assert tempos[:2] == [(0, 90), (480 * 6, 143)]
    assert [(t.name, t.program, t.is_drum) for t in out.tracks] == [("Piano", 0, False)]
    assert min(n.velocity for n in out.tracks[0].notes) > 0
    assert [m.time > 0 for m in out.markers if m.text == GENERATED_MARKER] == [True]


def test_a_primer_cut_past_its_end_is_the_whole_primer():
    """--primer-seconds 1e6 (a tick past symusic's 32-bit clip) used to fail with a several-line TypeError."""
    from conftest import make_score, scale_melody

    from musesynth.generate.primer import clip_seconds

    score = make_score(scale_melody(1, 40))
    for seconds in (1e6, 1e12):
        assert clip_seconds(score, seconds).note_num() == score.note_num()


def test_tick_at_follows_the_tempo_map():
    from conftest import make_score

    from musesynth.generate.primer import tick_at

    score = make_score([(0, 480, 60)], tempos=[(0, 60.0), (960, 120.0)])  # 2 beats of 1 s, then 0.5 s beats
    assert [tick_at(score, s) for s in (0, 1, 2, 3)] == [0, 480, 960, 1920]
    assert tick_at(make_score([(0, 480, 60)], tempos=[]), 1) == 960  # no tempo: 120 BPM


def test_fixed_shape_step_for_cuda_graphs_gives_the_same_tokens():
    """GraphedDecoding's step (masked, fixed shapes; captured as a CUDA graph on a GPU, eager here) draws
    the same tokens as the model itself for the same seed, in and past the context."""
    from musesynth.generate.fast_decode import GraphedDecoding

    torch.manual_seed(0)
    model = build_model(ModelConfig("transformer", 312, embed_dim=32, hidden_dim=64, num_layers=2, seq_len=24))
    enc = get_encoding("chord")
    kw = dict(num_tokens=60, num_samples=2, grammar=enc.grammar(), seed=1, seq_len=24)
    a = generate(model.eval(), [enc.bos_id], **kw)
    b = generate(GraphedDecoding(model), [enc.bos_id], **kw)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_the_generated_from_here_marker_stands_where_the_new_music_starts(bach_dir):
    """The marker (and the piano roll's line and colours) stood at the primer's last onset: a primer that ended
    on a whole chord (every primer cut by seconds) had that chord drawn as generated (the shipped model's bwv10.7,
    60 tokens: marker at beat 7, new notes from 8). It now stands at the first note that is not the primer's,
    never before the primer's last onset."""
    import musesynth
    from musesynth.generate.midi_out import GENERATED_MARKER

    model = musesynth.load_model()
    piece = sorted(bach_dir.rglob("*.mid"))[0]
    enc = model.encoding
    moved = 0
    for cut in [{"primer_tokens": n} for n in range(30, 90, 12)] + [{"primer_seconds": s} for s in (2.5, 4, 6)]:
        made = musesynth.generate(model, piece, 40, seed=1, **cut)[0]
        s = made.score
        tpq = s.ticks_per_quarter
        marker = [m.time / tpq for m in s.markers if m.text == GENERATED_MARKER]
        primer = enc.decode(made.tokens[: made.info.primer_tokens])
        had = {(n.time / primer.ticks_per_quarter, n.pitch) for t in primer.tracks for n in t.notes}
        notes = [(n.time / tpq, n.pitch) for t in s.tracks for n in t.notes]
        new = [t for t, p in notes if (t, p) not in had]
        last = max(t for t, _ in had)
        assert made.boundary == min(new) and made.boundary >= last
        assert marker == ([made.boundary] if made.boundary > 0 else [])
        moved += made.boundary > last
    assert moved >= 3  # a primer cut by seconds ends on a whole onset
