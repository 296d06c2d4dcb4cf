"""Experiments of `stochastic_graphs` (Weber et al. 2019, credit assignment in stochastic
computation graphs): bernoulli (the Bernoulli toy of Tucker et al. 2017) and sbn (sigmoid
belief nets trained with each gradient estimator).

Run one as `python -m launch.stochastic_graphs.<experiment>
--config=launch/stochastic_graphs/configs/<experiment>.py[:preset] --workdir=DIR`;
`launch.reproduce` registers those whose config module defines REPORT.
"""
