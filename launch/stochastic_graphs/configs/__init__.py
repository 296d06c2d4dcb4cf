"""ml_collections configs of the `launch.stochastic_graphs` experiments: `get_config(preset)` and,
for experiments registered in `launch.reproduce`, `REPORT = {"title": ..., "headline": ...}`.
"""
