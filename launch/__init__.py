"""absl launchers for every experiment of the monorepo, and the framework they share.

Experiments are grouped per package: `launch/<package>/<experiment>.py`, with its config in
`launch/<package>/configs/<experiment>.py`. `launch.app` runs one experiment
(`python -m launch.<package>.<experiment> --config=... --workdir=...`), `launch.reproduce` runs
every registered experiment and writes results/REPORT.md. The workdir,
training-loop, checkpoint and device-parallel pieces live in `launch.workdir`, `launch.train_loop`
and `launch.parallel`.
"""
