"""Side-by-side benchmarks against the tools users would otherwise pick; see run_all.py."""
