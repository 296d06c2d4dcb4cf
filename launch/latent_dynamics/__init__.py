"""Experiments of `latent_dynamics` (VILDS, Archer et al. 2015; fLDS, Gao et al. 2016):
lds_vs_kalman, plds and flds.

Run one as `python -m launch.latent_dynamics.<experiment>
--config=launch/latent_dynamics/configs/<experiment>.py[:preset] --workdir=DIR`;
`launch.reproduce` registers those whose config module defines REPORT.
"""
