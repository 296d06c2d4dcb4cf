"""absl launchers for every experiment of the monorepo, and the framework they share.

`launch.app` runs one experiment (`python -m launch.<experiment> --config=... --workdir=...`),
`launch.reproduce` runs every registered experiment and writes results/REPORT.md. The workdir,
training-loop, checkpoint and device-parallel pieces live in `launch.workdir`, `launch.train_loop`
and `launch.parallel`.
"""
