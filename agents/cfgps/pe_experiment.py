"""The policy-evaluation experiment of CF-GPS on PO-Sokoban (Buesing et al. 2019, Sec. 5.1).

Logged episodes of a uniformly random behaviour policy on held-out levels; three solver-based
target policies (`agents.cfgps.solver`, epsilon-noisy experts from near-perfect to near-random);
their values estimated from the logged episodes by
- MB-PE (Sec. 3.2): rollouts in the model with the scenario from the learned prior p(U);
- CF-PE (Sec. 3.2, Alg. 1): the logged episodes replayed counterfactually in a level drawn from
  the learned posterior p(U | h_t), for t in T_SET (t = 0 is the prior, with the logged
  observation noise); beside it CF-PE with the true level (the posterior at full information);
- per-episode IS and WIS (Sec. 3.1);
and compared, as relative errors |J_hat - J| / |J|, with the true values J, the mean return of
on-policy episodes of each target on the same held-out levels [O: J conditional on the held-out
levels, so the CF and IS estimates target exactly the quantity J measures].

The scenario model is trained first (`agents.cfgps.scenario`) on behaviour episodes of the
training part of one generated level bank; the held-out part gives the logged episodes.
`run(config)` returns every number; `launch.agents.cfgps_pe` writes the figure, table and
summary.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import numpy as np

from agents.cfgps import episodes as ep_lib
from agents.cfgps import policy_evaluation as pe
from agents.cfgps import scenario as sc
from agents.cfgps import solver as solver_lib
from envs import po_sokoban, sokoban


@dataclasses.dataclass(frozen=True)
class RoomBankConfig:
  """What both CF-GPS experiments share: the room, the App. D.3 level bank, the seed."""
  seed: int = 0                           # key of everything random after the level bank
  height: int = 10                        # room size (CF-GPS: 10x10)
  width: int = 10
  num_boxes: int = 3                      # boxes (CF-GPS: 3)
  horizon: int = 50                       # episode length T (CF-GPS: 50)
  bank_seed: int = 2                      # App. D.3 bank of this seed (level i: fold_in(seed, i))
  num_levels: int = 4096                  # bank size: training levels + held-out levels
  max_floor: int = 44                     # rooms the solver tables (see agents.cfgps.solver)


@dataclasses.dataclass(frozen=True)
class PEConfig(RoomBankConfig):
  """The policy-evaluation experiment."""
  num_eval_levels: int = 256              # held-out levels = logged episodes N (one each)
  epsilons: tuple = (0.05, 0.3, 0.8)      # target policies' action noise (near-perfect..random)
  t_set: tuple = sc.T_SET                 # history lengths of the posteriors
  true_value_reps: int = 8                # on-policy episodes per held-out level per target
  posterior_tries: int = 8                # CF-PE's levels: up to this many posterior samples
                                          # per episode, the first consistent with h_t kept
                                          # (scenario.sample_consistent_levels; 1: plain)
  scenario: sc.ScenarioConfig = sc.ScenarioConfig()
  scenario_chunks: int = 20               # training chunks of the scenario model


def _rel(value, se, true, true_se):
  err = abs(value - true) / abs(true)
  return float(err), float(np.sqrt(se ** 2 + true_se ** 2) / abs(true))


def run(config: PEConfig, log: Callable[[str], None] = print) -> dict:
  """The experiment (module docstring). Returns a dict of results (see the keys below)."""
  t_start = time.perf_counter()
  if config.horizon < max(config.t_set):
    raise ValueError(f"t={max(config.t_set)} is beyond the episode length: config.horizon="
                     f"{config.horizon}")
  env = po_sokoban.POSokoban(config.height, config.width, config.num_boxes)
  bank = sokoban.generated_levels(config.height, config.width, config.num_boxes,
                                  config.num_levels, config.bank_seed)
  train_levels, eval_levels = sc.split_bank(bank, config.num_eval_levels, "the level bank")
  params = env.make_params(eval_levels, max_steps=config.horizon)
  key = jax.random.PRNGKey(config.seed)
  k_data, k_train, k_log, k_rep, k_eval = jax.random.split(key, 5)
  out: dict = {"config": dataclasses.asdict(config)}

  # 1. The scenario model, by maximum likelihood on the training levels' behaviour episodes.
  t0 = time.perf_counter()
  data = sc.with_t_set(sc.collect(k_data, env, params, train_levels, config.horizon),
                      config.scenario.t_set)
  log(f"scenario data: {data.codes.shape[0]} (episode, t) rows ({time.perf_counter() - t0:.0f} s)")
  t0 = time.perf_counter()
  net_params, hist = sc.train(
      k_train, config.scenario, data, config.scenario_chunks,
      log=lambda i, m: log(f"scenario chunk {i + 1}/{config.scenario_chunks}: nll "
                           f"{m['loss']:.2f} (t=0 {m['nll_t0']:.1f}, t=50 "
                           f"{m.get('nll_t50', float('nan')):.1f})"))
  out["scenario_train_s"] = time.perf_counter() - t0
  out["scenario_history"] = hist
  del data

  # 2. Logged behaviour episodes on the held-out levels, and the posteriors' quality on them.
  behaviour = ep_lib.uniform_policy(env.num_actions)
  logged = ep_lib.log_on_levels(k_log, env, params, behaviour, eval_levels, config.horizon)
  solver = solver_lib.Solver(max_floor=config.max_floor, max_rooms=4096)
  t0 = time.perf_counter()
  out["posterior"], post_levels = sc.posterior_report(
      k_rep, config.scenario, net_params, env, params, logged, config.t_set, solver,
      return_samples=True)
  out["posterior_s"] = time.perf_counter() - t0
  for t, row in out["posterior"].items():
    log(f"posterior t={t}: log-lik {row['log_lik']:.1f}, exact {row['exact']:.2f}, consistent "
        f"{row['consistent']:.2f}, solvable {row.get('solvable', float('nan')):.2f}")
  if config.posterior_tries > 1:
    out["rejection"] = {}
    for t in config.t_set:
      levels, found = sc.sample_consistent_levels(
          jax.random.fold_in(k_rep, 20_000 + t), config.scenario, net_params, env, params,
          logged, t, config.posterior_tries)
      post_levels[t] = levels
      exact = np.all(np.asarray(sc.level_to_classes(levels))
                     == np.asarray(sc.level_to_classes(logged.level)), axis=(1, 2))
      out["rejection"][t] = {"found": float(np.mean(found)), "exact": float(exact.mean())}
      log(f"posterior t={t} with rejection ({config.posterior_tries} tries): consistent "
          f"{np.mean(found):.2f}, exact {exact.mean():.2f}")
  # The prior's levels for MB-PE: p(U) is the posterior at t = 0; fresh draws (another key).
  prior_levels, _ = sc.sample_levels(jax.random.fold_in(k_rep, 10_000), config.scenario,
                                     net_params, logged, 0, config.num_boxes)

  # 3. Each target: true value, then every estimator.
  out["policies"] = {}
  for i, eps in enumerate(config.epsilons):
    t0 = time.perf_counter()
    target = solver_lib.solver_policy(solver, eps)
    k_true, k_is, k_mb, k_cf = jax.random.split(jax.random.fold_in(k_eval, i), 4)
    # J on the held-out levels: `true_value_reps` on-policy episodes on each (batches of N:
    # the shape of every other rollout of this target, so one compiled rollout serves all).
    g, solved = [], []
    for r in range(config.true_value_reps):
      on = ep_lib.log_on_levels(jax.random.fold_in(k_true, r), env, params, target,
                                eval_levels, config.horizon)
      g.append(np.asarray(ep_lib.episode_return(on), np.float64))
      solved.append(np.asarray(on.terminated).any(-1))
    g = np.concatenate(g)
    true, true_se = float(g.mean()), float(g.std(ddof=1) / np.sqrt(g.size))
    res = {"epsilon": eps, "true_value": true, "true_value_se": true_se,
           "solve_rate": float(np.mean(np.concatenate(solved)))}
    est = {}
    est["is"] = pe.importance_sampling(k_is, env, params, logged, target)
    est["wis"] = pe.weighted_importance_sampling(k_is, env, params, logged, target)
    est["mb"] = pe.model_based_pe(k_mb, env, params, logged, target, levels=prior_levels)
    est["cf_true_level"] = pe.counterfactual_pe(k_cf, env, params, logged, target)
    for t in config.t_set:
      # The same posterior samples for every target (the report's; a paired comparison).
      est[f"cf_t{t}"] = pe.counterfactual_pe(jax.random.fold_in(k_cf, 1 + t), env, params,
                                             logged, target, levels=post_levels[t], t=t,
                                             check=False)
    for name, e in est.items():
      value, se = float(e.value), float(e.stderr)
      err, err_se = _rel(value, se, true, true_se)
      res[name] = {"value": value, "stderr": se, "rel_error": err, "rel_error_se": err_se,
                   "ess": float(e.ess)}
    res["wall_s"] = time.perf_counter() - t0
    out["policies"][f"eps{eps:g}"] = res
    log(f"target eps={eps:g}: J = {true:.3f} +- {true_se:.3f}; rel. error MB "
        f"{res['mb']['rel_error']:.2f}"
        f", CF t=0 {res['cf_t0']['rel_error']:.2f}, CF t={config.t_set[-1]} "
        f"{res[f'cf_t{config.t_set[-1]}']['rel_error']:.2f}, IS {res['is']['rel_error']:.2f} "
        f"({res['wall_s']:.0f} s; solver rooms {solver.rooms_built}, skipped "
        f"{solver.rooms_skipped})")
  out["solver_rooms"] = solver.rooms_built
  out["solver_rooms_skipped"] = solver.rooms_skipped
  out["wall_s"] = time.perf_counter() - t_start
  return out
