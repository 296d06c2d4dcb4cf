"""Experiments of `manifold` (LL-LVM, Park et al. 2015): swiss_roll, digits, selection and
out_of_sample; `fit` holds what they share (preprocessing, the options of manifold.fit).

Run one as `python -m launch.manifold.<experiment>
--config=launch/manifold/configs/<experiment>.py[:preset] --workdir=DIR`;
`launch.reproduce` registers those whose config module defines REPORT.
"""
