"""The run report opened in headless Chromium: every image loads, and the verdicts and the three
story charts are on the first screen (1440x900)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, ViewportSize

__all__ = ["FIRST_SCREEN", "check_report_page"]

FIRST_SCREEN: ViewportSize = {"width": 1440, "height": 900}


def check_report_page(browser: Browser, report: Path, screenshot: Path) -> list[str]:
    """Open ``report``, check it, save its first screen to ``screenshot``; returns the images'
    sources, each checked to have loaded."""
    page = browser.new_page(viewport=FIRST_SCREEN)
    try:
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img",
            "els => els.map(e => ({src: e.getAttribute('src'), complete: e.complete, w: e.naturalWidth}))",
        )
        assert images, "the report has no image"
        broken = [i["src"] for i in images if not i["complete"] or i["w"] <= 0]
        assert not broken, f"images that did not load: {broken}"
        for selector in ("#verdicts", "#verdicts li", "figure.story img"):
            assert page.locator(selector).count() > 0, f"the report has no {selector}"
        story = page.locator("figure.story img")
        assert story.count() == 3, story.count()
        boxes = {"verdicts": page.locator("#verdicts").bounding_box()}
        boxes |= {f"story chart {i + 1}": story.nth(i).bounding_box() for i in range(3)}
        for name, box in boxes.items():
            assert box is not None and box["height"] > 50 and box["width"] > 300, (name, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= FIRST_SCREEN["height"], (
                f"{name} is not within the first screen: {box}"
            )
            assert box["x"] >= 0 and box["x"] + box["width"] <= FIRST_SCREEN["width"], (name, box)
        page.screenshot(path=str(screenshot))
        return [str(i["src"]) for i in images]
    finally:
        page.close()
