"""Free generation with a parts model keeps each SATB voice to one note at a time (generate.voices.OneNotePerVoice)."""

from __future__ import annotations

import numpy as np
import symusic
import torch

from musesynth.cli import main
from musesynth.generate.voices import OneNotePerVoice, most_sounding
from musesynth.tokenize import get_encoding

ENC = get_encoding("parts", max_parts=4, drop_extra_parts=True)


def test_a_voice_waits_for_its_note_to_end_and_parts_come_from_the_last_to_the_first(bach_dir):
    score = symusic.Score(str(sorted(bach_dir.rglob("*.mid"))[0]))
    ids = ENC.encode(score)
    bar = np.flatnonzero(ids == ENC.bar_id)[1]  # the prompt: the header and the first bar, up to bar 2's BAR
    c = OneNotePerVoice(ENC, ids[None, : bar + 1], torch.device("cpu"))
    q = ENC.decode_quantized(ids[: bar + 1])
    start = int(ENC.bar_times(ids)[0][1])
    allowed = c.allowed(torch.ones(1, len(ENC.vocab), dtype=torch.bool), torch.tensor([ENC.bar_id]))[0].numpy()
    assert allowed[~ENC.is_note].all()  # only notes are narrowed
    c.advance(torch.tensor([ENC.pos0]))  # POS_0 of bar 2
    allowed = c.allowed(torch.ones(1, len(ENC.vocab), dtype=torch.bool), torch.tensor([ENC.pos0]))[0].numpy()
    for part in range(4):
        sounding = ((q["part"] == part) & (q["onset"] + q["duration"] > start)).any()
        assert allowed[ENC.note_token_id(60, part)] == (not sounding)
    c.advance(torch.tensor([int(ENC.note_token_id(48, 2))]))  # the tenor first: then only soprano and alto
    allowed = c.allowed(torch.ones(1, len(ENC.vocab), dtype=torch.bool), torch.tensor([0]))[0].numpy()
    assert not allowed[ENC.note_token_id(50, 3)] and not allowed[ENC.note_token_id(55, 2)]


def test_pieces_of_a_parts_model_have_one_note_at_a_time_per_voice(parts_run, tmp_path):
    assert main(["generate", "-c", str(parts_run), "--num-samples", "3", "-s", "2", "--length", "300", "--no-wav",
                 "--no-png", "-o", str(tmp_path), "-q"]) == 0
    mids = sorted(tmp_path.glob("*.mid"))
    assert len(mids) == 3
    for mid in mids:
        for track in symusic.Score(str(mid)).tracks:
            n = track.notes.numpy()
            if track.name in ("Soprano", "Alto", "Tenor", "Bass"):
                assert most_sounding(n["time"], n["duration"]) <= 1, (mid.name, track.name)
