"""Experiments of `calcium` (DeepSpike, Speiser et al. 2017): simulated, chen2013, dsbap,
posterior_samples, general, robustness and leave_one_out.

Run one as `python -m launch.calcium.<experiment>
--config=launch/calcium/configs/<experiment>.py[:preset] --workdir=DIR`;
`launch.reproduce` registers those whose config module defines REPORT.
"""
