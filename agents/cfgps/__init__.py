"""Counterfactually-guided policy search (CF-GPS; Buesing, Weber, Zwols, Racaniere, Guez,
Lespiau, Heess 2019, *Woulda, coulda, shoulda: counterfactually-guided policy search*).

Issue 19: logged episodes of PO-Sokoban with their scenario (level and observation-noise
keys), counterfactual replay (Alg. 1), and the policy-evaluation estimators of Sec. 3
(per-episode importance sampling, weighted IS, CF-PE, MB-PE) behind one signature; an exact
Sokoban solver and the solver-based target policies of Sec. 5 (`solver`); the learned scenario
prior and posteriors p(U | h_t) over levels (`scenario`); CF-GPS policy search (`search`);
the two experiments of Sec. 5, policy evaluation (`pe_experiment`) and policy search
(`ps_experiment`).
"""
from agents.cfgps import scenario
from agents.cfgps.episodes import (
    Episode,
    Policy,
    categorical_policy,
    check_episodes,
    counterfactual_rollout,
    episode_return,
    history,
    log_episodes,
    log_on_levels,
    replay_actions,
    uniform_policy,
)
from agents.cfgps.policy_evaluation import (
    ESTIMATORS,
    Estimate,
    counterfactual_pe,
    evaluate,
    exact_level,
    importance_sampling,
    importance_weights,
    model_based_pe,
    relative_error,
    target_log_probs,
    weighted_importance_sampling,
)
from agents.cfgps.solver import Solver, expert_probs, solver_policy

__all__ = [
    "ESTIMATORS", "Episode", "Estimate", "Policy", "categorical_policy", "check_episodes",
    "counterfactual_pe", "counterfactual_rollout", "episode_return", "evaluate", "exact_level",
    "history", "importance_sampling", "importance_weights", "log_episodes", "model_based_pe",
    "relative_error", "replay_actions", "target_log_probs", "uniform_policy",
    "weighted_importance_sampling", "Solver", "expert_probs", "solver_policy", "log_on_levels",
    "scenario",
]
