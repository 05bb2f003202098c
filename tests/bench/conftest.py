"""The benches' own modules (bench/) import each other as scripts do: by their file names."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
