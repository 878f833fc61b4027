"""The studio in a real browser: headless Chromium (Debian's, driven by Playwright for Python) uploads a
primer, generates with a tiny model, waits for the player and the download link, and downloads the MIDI.
Skipped, with the reason, where Playwright or Chromium is missing (`make setup` installs both as root)."""

from __future__ import annotations

import shutil
import time

import pytest
import symusic
from conftest import make_score, scale_melody

from musesynth.generate.midi_out import GENERATED_MARKER
from musesynth.generate.render import find_soundfont

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
CAN_RENDER = shutil.which("fluidsynth") is not None and find_soundfont() is not None


@pytest.fixture
def page():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser.new_page(accept_downloads=True)
        finally:
            browser.close()


def test_upload_generate_listen_download(page, studio_url, tmp_path):
    t0 = time.monotonic()
    url, _ = studio_url
    primer = tmp_path / "primer.mid"
    make_score(scale_melody(3, 40)).dump_midi(str(primer))
    (tmp_path / "notes.txt").write_text("not a MIDI file")
    page.goto(url)
    page.select_option("#model", "run/tiny-gru")
    expect = sync_api.expect
    expect(page.locator("#model-info")).to_contain_text("gru")

    page.set_input_files("#primer-file", str(tmp_path / "notes.txt"))  # a bad upload: one visible line
    expect(page.locator("#error")).to_contain_text("not a MIDI file")
    assert "Traceback" not in page.content()

    page.set_input_files("#primer-file", str(primer))
    expect(page.locator("#primer-info")).to_contain_text("primer: primer.mid (")
    expect(page.locator("#error")).to_be_hidden()
    page.fill("#primer-seconds", "0")
    page.fill("#length", "40")
    page.click("#generate")
    card = page.locator("#job-1")
    expect(card.locator("a.download-mid")).to_be_visible(timeout=60_000)
    expect(card.locator("img.roll")).to_be_visible()
    if CAN_RENDER:
        expect(card.locator("audio")).to_have_count(1)
        assert page.eval_on_selector("#job-1 audio", "a => a.src").endswith("/files/1/wav")
    else:
        expect(card).to_contain_text("no WAV:")
    with page.expect_download() as download:
        card.locator("a.download-mid").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    out, src = symusic.Score(str(path)), symusic.Score(str(primer))
    assert path.name.startswith("primer_gru_seed0_0") and out.note_num() > 0
    assert sorted((n.time, n.pitch) for n in out.tracks[0].notes)[:2] == \
        sorted((n.time, n.pitch) for n in src.tracks[0].notes)[:2]
    assert [m.text for m in out.markers] == [GENERATED_MARKER]

    page.fill("#seed", "1")  # generating again keeps the first result in the list
    page.click("#generate")
    expect(page.locator("#job-2 a.download-mid")).to_be_visible(timeout=60_000)
    expect(page.locator("#results > li")).to_have_count(2)
    assert time.monotonic() - t0 < 60


def test_composer_choice_and_rewriting_bars_of_a_corpus_piece(page, control_url):
    url, _ = control_url
    expect = sync_api.expect
    page.goto(url)
    page.select_option("#model", "run/tiny-infill")
    expect(page.locator("#mode-rewrite")).to_be_enabled()
    expect(page.locator("#composer option")).to_have_text(["any (drawn from the corpus)", "bach", "palestrina"])
    page.select_option("#corpus-piece", "a/piece01.mid")
    expect(page.locator("#primer-info")).to_contain_text("primer: a/piece01.mid (")
    page.check("#mode-rewrite")
    expect(page.locator("#composer")).to_be_disabled()  # the piece keeps its own header
    expect(page.locator("#length")).to_be_disabled()
    page.fill("#bars-first", "2")
    page.fill("#bars-last", "999")
    page.click("#generate")
    expect(page.locator("#error")).to_contain_text("has only")  # a span past the end: one line, no job
    page.fill("#bars-last", "3")
    page.click("#generate")
    card = page.locator("#job-1")
    expect(card.locator("a.download-mid")).to_be_visible(timeout=60_000)
    expect(card.locator("img.roll")).to_be_visible()
    expect(card).to_contain_text("bars 2-3 of a/piece01.mid rewritten")
    expect(card.locator(".legend")).to_contain_text("rewritten")
    assert "Traceback" not in page.content()
