"""Make the README's figures (docs/figures) from a demo run, so they show the demo's real results and
no test writes into the source tree: the paper's Fig. 2 and Fig. 3 from the demo's report, and
screenshots in Chromium of the browse grid and of the report's model section.

    .venv/bin/python scripts/figures.py [--demo corpus-demo]

Runs ``corpus demo --out DIR`` first when DIR holds no demo yet (a few minutes).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import Catalog
from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.reports import REPORT_PAGE, report_figures_dir

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
REPORT_FIGURES = ("fig2_engagement.png", "fig3_virality_score.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("corpus-demo"), help="the demo's --out directory")
    demo = parser.parse_args().demo
    settings = Settings(data_dir=demo / "data")
    report = settings.data_dir / REPORT_PAGE
    if not report.is_file():
        corpus = Path(sys.executable).with_name("corpus")
        subprocess.run([str(corpus), "demo", "--out", str(demo)], check=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FIGURES:
        shutil.copyfile(report_figures_dir(report) / name, FIGURES / name)

    export_dir = max((settings.data_dir / "exports").iterdir())  # the demo makes one export
    with (
        sync_playwright() as playwright,
        open_store(settings) as store,
        BrowseServer(settings, store, Catalog(store, export_dir)) as server,
    ):
        browser = playwright.chromium.launch(executable_path=settings.resolved_browser_path(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.base_url + "/?sort=play_count")
        page.wait_for_load_state("networkidle")  # the poster frames in view (the rest load lazily)
        page.screenshot(path=str(FIGURES / "browse-grid.png"))
        page.goto(report.resolve().as_uri())
        page.evaluate("document.getElementById('model').scrollIntoView()")  # the section at the top
        page.screenshot(path=str(FIGURES / "report.png"))
        browser.close()
    print(f"wrote {', '.join(sorted(p.name for p in FIGURES.iterdir()))} in {FIGURES}")


if __name__ == "__main__":
    main()
