"""Render a run's report again and save its first screen (1440x900) as a PNG.

    PYTHONPATH=$PWD .venv/bin/python -m bench.report_screenshot RUN_DIR [docs/report-first-screen.png]

The picture of the report in the README and docs/running/report.md is made this way from a real
run's directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.report.run_page import write_report
from tests.browser import headless_chromium
from tests.report_page import check_report_page


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    out = Path(argv[1] if len(argv) > 1 else "docs/report-first-screen.png")
    report = write_report(run_dir)
    with headless_chromium() as browser:
        images = check_report_page(browser, report, out)
    print(f"{out}: the first screen of {report} ({len(images)} images, every one loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
