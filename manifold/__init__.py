"""LL-LVM: the locally linear latent variable model.

Park, Jitkrittum, Qamar, Szabo, Buesing, Sahani 2015, "Bayesian manifold learning: the locally
linear latent variable model" (NIPS 2015). Neighbourhood graphs, variational EM with closed-form
q(x), q(C) and M-steps for alpha and gamma, the lower bound, model selection with the bound and
an out-of-sample extension. Everything runs in float64 (`fit` switches jax_enable_x64 on inside;
call the lower-level functions under `jax.enable_x64(True)`).
"""
from manifold.em import (
                         DEFAULT_ALPHA,
                         DEFAULT_EPSILON,
                         EMState,
                         FitResult,
                         Problem,
                         SquaremCarry,
                         chol_inverse,
                         em_step,
                         fit,
                         init_squarem,
                         init_state,
                         lower_bound,
                         lower_bound_terms,
                         make_problem,
                         run_em,
                         run_squarem,
                         squarem_extrapolate,
                         transform_latents,
                         update_alpha,
                         update_gamma,
                         update_gauge,
                         update_q_c,
                         update_q_x,
)
from manifold.evaluation import one_nn_error, spearman_to_truth, trustworthiness
from manifold.expectations import local_linear_mean, phi_c, phi_x
from manifold.graph import (
                         Graph,
                         check_observations,
                         connect_components,
                         isomap,
                         knn_adjacency,
                         knn_graph,
                         laplacian,
                         make_graph,
)
from manifold.out_of_sample import Extension, extend, local_energy
from manifold.preprocessing import Normalised, normalise
from manifold.selection import add_edges, bound_for_graphs, bound_vs_dx, bound_vs_k, select_model
from manifold.toy_data import curved_sheet, helix

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_EPSILON", "EMState", "Extension", "FitResult", "Graph",
    "Normalised", "Problem", "SquaremCarry", "add_edges", "bound_for_graphs", "bound_vs_dx",
    "bound_vs_k", "check_observations", "chol_inverse", "connect_components", "curved_sheet",
    "em_step", "extend", "fit", "helix", "init_squarem", "init_state", "isomap",
    "knn_adjacency", "knn_graph", "laplacian", "local_energy", "local_linear_mean",
    "lower_bound", "lower_bound_terms", "make_graph", "make_problem", "normalise",
    "one_nn_error", "phi_c", "phi_x", "run_em", "run_squarem", "select_model",
    "spearman_to_truth", "squarem_extrapolate", "transform_latents", "trustworthiness",
    "update_alpha", "update_gamma", "update_gauge", "update_q_c", "update_q_x",
]
