"""Makes the test-only environments of this directory importable (`from point_mass import ...`)."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
