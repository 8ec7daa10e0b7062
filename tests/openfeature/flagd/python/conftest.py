"""Makes the shared fixture (`../fixture.py`) importable. Nothing here is skipped: a missing
server binary fails the fixture."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
