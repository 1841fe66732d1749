from __future__ import annotations

import os
from pathlib import Path

# The project's own binaries (Toxiproxy built by scripts/setup) come first, for every test.
_ROOT = Path(__file__).resolve().parent.parent
os.environ["PATH"] = f"{_ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
