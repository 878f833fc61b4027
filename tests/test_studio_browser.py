"""The studio in a real browser: headless Chromium (Debian's, driven by Playwright for Python) uploads a
primer, generates with a tiny model, waits for the player and the download link, and downloads the MIDI.
Skipped, with the reason, where Playwright or Chromium is missing (`make setup` installs both as root)."""

from __future__ import annotations

import re
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
            yield browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
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
    expect(page.locator("#primer-error")).to_contain_text("not a MIDI file")
    assert "Traceback" not in page.content()

    page.set_input_files("#primer-file", str(primer))
    expect(page.locator("#primer-info")).to_contain_text("primer: primer.mid (")
    expect(page.locator("#primer-error")).to_be_hidden()
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
    seed = re.search(r"seed (\d+)", card.locator(".meta").first.inner_text()).group(1)  # drawn anew, shown
    assert path.name.startswith(f"primer_gru_seed{seed}_0") and out.note_num() > 0
    assert sorted((n.time, n.pitch) for n in out.tracks[0].notes)[:2] == \
        sorted((n.time, n.pitch) for n in src.tracks[0].notes)[:2]
    assert [m.text for m in out.markers] == [GENERATED_MARKER]

    page.fill("#seed", "1")  # generating again keeps the first result in the list; a typed seed is kept
    page.click("#generate")
    expect(page.locator("#job-2 a.download-mid")).to_be_visible(timeout=60_000)
    expect(page.locator("#job-2 .meta").first).to_contain_text("seed 1")
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
    expect(page.locator("#mode-error")).to_contain_text("has only")  # a span past the end: one line, no job
    expect(page.locator("#mode-error")).to_be_in_viewport()
    page.fill("#bars-last", "3")
    page.click("#generate")
    card = page.locator("#job-1")
    expect(card.locator("a.download-mid")).to_be_visible(timeout=60_000)
    expect(card.locator("img.roll")).to_be_visible()
    expect(card).to_contain_text("bars 2-3 of a/piece01.mid rewritten")
    expect(card.locator(".legend")).to_contain_text("rewritten")
    assert "Traceback" not in page.content()


def drums(tmp_path, name="drums.mid", piano_after: int | None = None):
    """A drums-only MIDI file (channel 10), optionally with a piano part from quarter ``piano_after`` on."""
    score = make_score(scale_melody(2, 30), drum=True)
    if piano_after is not None:
        score.tracks.append(make_score([(t + 480 * piano_after, d, p) for t, d, p in scale_melody(3, 30)]).tracks[0])
    path = tmp_path / name
    score.dump_midi(str(path))
    return path


def test_an_unusable_upload_is_refused_at_upload(page, studio_url, tmp_path):
    url, studio = studio_url
    expect = sync_api.expect
    page.goto(url)
    page.select_option("#model", "run/tiny-gru")
    page.set_input_files("#primer-file", str(drums(tmp_path)))
    error = page.locator("#primer-error")
    expect(error).to_contain_text("drums.mid: cannot use this file as a primer: no pitched notes")
    expect(error).to_be_in_viewport()
    expect(page.locator("#primer-info")).not_to_contain_text("drums.mid")  # no primer was taken
    assert studio.primers == {} and page.evaluate("window.scrollY") == 0


def test_an_opening_without_notes_is_refused_beside_its_seconds(page, studio_url, tmp_path):
    """Drums for 20 seconds, then piano: usable as a whole, but its first second has no pitched note."""
    url, studio = studio_url
    expect = sync_api.expect
    page.goto(url)
    page.select_option("#model", "run/tiny-gru")
    page.set_input_files("#primer-file", str(drums(tmp_path, "late piano.mid", piano_after=40)))
    expect(page.locator("#primer-info")).to_contain_text("primer: late piano.mid (")
    page.fill("#primer-seconds", "1")
    page.click("#generate")
    expect(page.locator("#primer-error")).to_contain_text("no pitched notes in its first 1 s")
    expect(page.locator("#primer-error")).to_be_in_viewport()
    expect(page.locator("#primer-seconds")).to_have_class(re.compile("invalid"))
    assert studio.jobs.all() == []


def test_a_failing_job_shows_its_error_on_its_card(page, studio_url):
    """The job fails on the server (its output folder became a file): its card says why within a second of the
    failure, and again after a reload, instead of 'generating: 0%' forever."""
    url, studio = studio_url
    expect = sync_api.expect
    page.goto(url)
    page.select_option("#model", "run/tiny-gru")
    expect(page.locator("#model-info")).to_contain_text("gru")
    page.fill("#length", "5")
    studio.out_dir.write_text("a user's file")
    page.click("#generate")
    end = time.monotonic() + 60
    while not studio.jobs.all() or studio.jobs.all()[0].state != "error":
        assert time.monotonic() < end, "the job did not fail"
        time.sleep(0.02)
    card_error = page.locator("#job-1 .job-error")
    expect(card_error).to_contain_text("is a file, not a folder", timeout=1000)  # within a second of the failure
    expect(card_error).to_be_in_viewport()
    expect(page.locator("#job-1 progress")).to_have_count(0)
    page.reload()  # and after a reload
    expect(page.locator("#job-1 .job-error")).to_contain_text("is a file, not a folder")
    expect(page.locator("#job-1 progress")).to_have_count(0)


FITS = """() => {
  // labels, placeholders and the chosen options must show whole: none is cut off by its box
  const ctx = document.createElement("canvas").getContext("2d"), cut = [];
  for (const l of document.querySelectorAll("form label")) if (l.offsetParent && l.scrollWidth > l.clientWidth + 1)
    cut.push(l.textContent.trim());
  for (const e of document.querySelectorAll("form input[placeholder], form select")) {
    if (!e.offsetParent) continue;
    const cs = getComputedStyle(e); ctx.font = cs.font;
    const text = e.tagName === "SELECT" ? (e.selectedOptions[0] || {}).text || "" : e.placeholder;
    const arrow = e.tagName === "SELECT" ? 20 : 0;
    const room = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - arrow;
    if (ctx.measureText(text).width > room) cut.push(text);
  }
  return cut;
}"""


@pytest.mark.parametrize("action, slot, control", [
    (lambda p: p.fill("#length", "99999"), "#sampling-error", "#length"),
    (lambda p: p.fill("#top-p", "3"), "#sampling-error", "#top-p"),
    (lambda p: p.fill("#seed", "-4"), "#sampling-error", "#seed"),
    (lambda p: p.fill("#key-strength", "99"), "#controls-error", "#key-strength"),
    (lambda p: p.fill("#primer-seconds", "-1"), "#primer-error", "#primer-seconds"),
    (lambda p: p.evaluate("() => { const o = new Option('gone', 'run/gone'); document.getElementById('model').add(o);"
                          " o.selected = true; }"), "#model-error", "#model"),
], ids=["length", "top-p", "seed", "key-strength", "primer-seconds", "model"])
def test_every_error_is_visible_beside_its_control(action, slot, control, page, studio_url):
    """In a 1280x900 window, with nothing scrolled: the error shows in its control's own group, in view."""
    url, studio = studio_url
    expect = sync_api.expect
    page.goto(url)
    expect(page.locator("#model-info")).to_contain_text("parameters")
    assert page.evaluate(FITS) == []
    action(page)
    page.locator("#generate").dispatch_event("click")  # no scrolling to reach the button
    error = page.locator(slot)
    expect(error).to_be_visible()
    expect(error).to_be_in_viewport(ratio=1.0)
    assert "\n" not in error.inner_text() and page.evaluate("window.scrollY") == 0
    assert page.evaluate("([e, c]) => document.querySelector(e).closest('fieldset').contains("
                         "document.querySelector(c))", [slot, control])
    expect(page.locator(control)).to_have_class(re.compile("invalid"))
    expect(page.locator("form .error:not([hidden])")).to_have_count(1)
    assert studio.jobs.all() == []


@pytest.fixture
def parts_url(parts_run, bach_dir, tmp_path):
    from conftest import serve_studio

    yield from serve_studio(parts_run.parent, bach_dir, tmp_path / "studio")


SHIPPED_PARTS = "shipped/bach-parts"


def test_harmonise_a_typed_melody_and_rewrite_voices_with_the_shipped_model(page, parts_url, bach_dir, tmp_path):
    """The shipped parts model, reached by choosing a mode the default (meter) model cannot do: a typed melody
    harmonised (one colour per voice, a four-track MIDI), then the alto and tenor of a chorale's bars rewritten."""
    from musesynth.artifacts.shipped import PARTS_MODEL, is_shipped

    if not is_shipped(PARTS_MODEL):
        pytest.skip("the shipped parts model is missing (make pretrained)")
    url, studio = parts_url
    expect = sync_api.expect
    page.goto(url)
    expect(page.locator("#model-info")).to_contain_text("parameters")
    page.fill("#melody-notes", "G4 G4 A4 B4 | C5:2 B4:2 | A4 A4 G4 F#4 | G4:4")
    expect(page.locator("input[name=mode][value=harmonize]")).to_be_checked()  # typing a melody picks the mode
    expect(page.locator("#model")).to_have_value(SHIPPED_PARTS)  # ... and a model that can harmonise
    expect(page.locator("#generate")).to_have_text("Harmonise")
    expect(page.locator("#temperature")).to_have_value("0.85")  # harmonize's own default, until the box is edited
    expect(page.locator("#voice-S")).not_to_be_checked()
    page.fill("#particles", "2")  # the best of two drafts (a model with voices; greyed out for others)
    page.check("#top-line")  # a melody with chords would give its top line (this one has none)
    page.click("#generate")
    card = page.locator("#job-1")
    expect(card).to_contain_text("best of 2 particles")
    expect(card.locator("a.download-mid")).to_be_visible(timeout=120_000)
    expect(card.locator("img.roll")).to_be_visible()
    expect(card.locator(".legend b")).to_have_text(["Soprano", "Alto", "Tenor", "Bass"])
    expect(card).to_contain_text("11 melody notes kept")
    with page.expect_download() as download:
        card.locator("a.download-mid").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    score = symusic.Score(str(path))
    assert [t.name for t in score.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [n.pitch for n in score.tracks[0].notes] == [67, 67, 69, 71, 72, 71, 69, 69, 67, 66, 67]
    assert all(t.note_num() for t in score.tracks[1:])
    assert studio.jobs.all()[0].options.top_line is True
    assert studio.jobs.all()[0].options.sampling.temperature == 0.85

    name = sorted(p.relative_to(bach_dir).as_posix() for p in bach_dir.rglob("*.mid"))[4]
    page.select_option("#corpus-piece", name)
    expect(page.locator("#primer-info")).to_contain_text(f"primer: {name} (")
    page.check("#mode-rewrite")
    expect(page.locator("#top-line-box")).to_be_hidden()  # harmonising only
    expect(page.locator("#temperature")).to_have_value("1")  # back to the sampler's default
    page.uncheck("#voice-S")
    page.uncheck("#voice-B")
    page.fill("#bars-first", "2")
    page.fill("#bars-last", "3")
    page.fill("#particles", "")
    page.click("#generate")
    card = page.locator("#job-2")
    expect(card.locator("a.download-mid")).to_be_visible(timeout=120_000)
    expect(card).to_contain_text(f"bars 2-3 of {name} rewritten (A,T)")
    expect(card.locator(".legend")).to_contain_text("faded: kept")
    assert "Traceback" not in page.content() and studio.jobs.all()[1].state == "done"
    assert [job.options.particles for job in studio.jobs.all()] == [2, 1]
    page.select_option("#model", "run/gru")
    page.check("input[name=mode][value=continue]")
    expect(page.locator("#particles")).to_be_enabled()
    page.select_option("#model", "shipped/bach")  # the meter model has no voices to weigh drafts by
    expect(page.locator("#particles")).to_be_disabled()
