"""stochastic_graphs: gradient estimators, baselines and critics for stochastic computation graphs.

Weber, Heess, Buesing, Silver 2019, "Credit assignment techniques in stochastic computation
graphs"; Schulman, Heess, Weber, Abbeel 2015, "Gradient estimation using stochastic computation
graphs"; Foerster et al. 2018 (DiCE); Mnih & Gregor 2014 (NVIL); Mnih & Rezende 2016 (VIMCO);
Kool et al. 2019 (LOO); Tucker et al. 2017 (REBAR); Grathwohl et al. 2018 (RELAX); Yin & Zhou 2019
(ARM); Dong et al. 2020 (DisARM); Jang et al. 2017 / Maddison et al. 2017 (Gumbel-softmax).

A model is an ordinary JAX function calling `sample(name, dist, key)` and `cost(name, value)`;
`make_surrogate(model)` returns a function whose output's gradient is the estimator. See
README.md for the equation-to-function table and an example.
"""
from stochastic_graphs.baselines import (
    BaselineTransform,
    MovingAverageState,
    leave_one_out_baseline,
    moving_average_baseline,
)
from stochastic_graphs.dependencies import function_dependencies
from stochastic_graphs.dice import magic_box
from stochastic_graphs.fitting import mc_value_loss, td_lambda_value_loss, td_value_loss
from stochastic_graphs.horizons import (
    discounted_costs_to_go,
    generalized_advantages,
    lambda_costs_to_go,
    n_step_costs_to_go,
)
from stochastic_graphs.multi_sample import (
    MultiSampleInfo,
    loo_surrogate,
    make_multi_sample_surrogate,
    vimco_surrogate,
)
from stochastic_graphs.nodes import (
    Antithetic,
    Relaxation,
    baseline,
    bootstrap,
    cost,
    critic,
    is_reparameterizable,
    sample,
    scan,
)
from stochastic_graphs.regularizers import entropy_regularizer, regularizer
from stochastic_graphs.relaxations import (
    DisARM,
    GumbelSoftmax,
    StraightThrough,
    arm_surrogate,
    binary_concrete,
    disarm_surrogate,
    gumbel_softmax,
    relax_surrogate,
    straight_through,
)
from stochastic_graphs.surrogate import (
    GraphStructure,
    Influence,
    SurrogateInfo,
    graph_structure,
    make_surrogate,
    value_and_grad,
)
from stochastic_graphs.variance import GradientStatistics, gradient_statistics, per_sample_gradients

__all__ = [
    "Antithetic", "BaselineTransform", "DisARM", "GradientStatistics", "GraphStructure",
    "GumbelSoftmax", "Influence", "MovingAverageState", "MultiSampleInfo", "Relaxation",
    "StraightThrough",
    "SurrogateInfo", "arm_surrogate",
    "baseline", "binary_concrete", "bootstrap", "cost", "critic", "discounted_costs_to_go",
    "disarm_surrogate", "entropy_regularizer", "function_dependencies", "generalized_advantages",
    "gradient_statistics",
    "graph_structure", "gumbel_softmax", "is_reparameterizable", "lambda_costs_to_go",
    "leave_one_out_baseline", "loo_surrogate", "magic_box", "make_multi_sample_surrogate",
    "make_surrogate", "mc_value_loss", "moving_average_baseline", "n_step_costs_to_go",
    "per_sample_gradients", "regularizer", "relax_surrogate", "sample", "scan",
    "straight_through",
    "td_lambda_value_loss", "td_value_loss", "value_and_grad", "vimco_surrogate",
]
