"""Models built on `stochastic_graphs` that the experiments train with each estimator.

`sbn`: sigmoid belief nets (Mnih & Gregor 2014; Tucker et al. 2017), one or two stochastic
layers, with the estimator choices `sbn.ESTIMATORS`. Import the module itself
(`from stochastic_graphs.models import sbn`); the package `stochastic_graphs` does not import it.
"""
