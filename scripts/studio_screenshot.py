"""Make docs/studio.png: the studio after one generation with the shipped model, in headless Chromium.

    python scripts/studio_screenshot.py [--corpus-dir data/bach_midi] [-o docs/studio.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from musesynth.studio.catalog import Corpus
from musesynth.studio.server import Studio, StudioServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus-dir", default="data/bach_midi", help="corpus folder (default %(default)s)")
    ap.add_argument("--piece", default="bach/bwv10.7.mid", help="corpus piece to prime with (default %(default)s)")
    ap.add_argument("-o", "--out", default="docs/studio.png", help="PNG to write (default %(default)s)")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        print("no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Path(tmp), Path(tmp) / "runs", Corpus(Path(args.corpus_dir), Path(tmp) / "corpus"))
        server = StudioServer(studio, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url)
            expect(page.locator("#model-info")).to_contain_text("parameters")
            page.select_option("#corpus-piece", args.piece)
            expect(page.locator("#primer-info")).to_contain_text("primer:")
            page.fill("#length", "300")
            page.fill("#top-p", "0.95")
            page.fill("#seed", "1")
            page.select_option("#key", "D major")
            page.click("#generate")
            expect(page.locator("#job-1 audio")).to_have_count(1, timeout=600_000)
            page.wait_for_function("document.querySelector('#job-1 img.roll').complete")
            page.screenshot(path=args.out, full_page=True)
            browser.close()
        server.shutdown()
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
