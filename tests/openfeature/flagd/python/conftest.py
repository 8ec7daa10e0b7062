"""Makes the shared fixture (`../fixture.py`) importable and fails the run on any skip."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
