"""ml_collections configs, one module per experiment: `get_config(preset)` and, for experiments
registered in `launch.reproduce`, a module-level `REPORT = {"title": ..., "headline": (...)}`."""
