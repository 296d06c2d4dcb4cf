"""The policy-search experiment of CF-GPS on PO-Sokoban (Buesing et al. 2019, Sec. 5.2; issue 19).

Every method learns a policy pi_theta on the observation history (`agents.cfgps.search`) from
the same budget of real episodes: `iterations` rounds of `episodes_per_iteration` real episodes
of the current pi on levels of the training part of one generated bank (the same levels and
keys for every method in a seed: a paired comparison). The model-based methods differ only in
the scenario U each real episode's counterfactual rollouts are run in (`infer_scenarios`):

- CF-GPS: U ~ p(U | h_T), the learned posterior given the whole real episode (Sec. 4), with the
  logged observation noise (the counterfactual of Alg. 1);
- GPS-like: U ~ p(U | h_1), the posterior given the first observation only [O: the issue's
  "conditioned on the first observation"; GPS's local controllers see the initial state]
  (its rejection step also checks h_1's first reward r_0, as `episodes.history` defines h_1);
- MB-PS: U ~ p(U), the learned prior, with fresh observation noise (model-based policy search:
  the real episode is not used beyond its count);
- CF-GPS with the true level (`cf_true`, optional) [O]: the posterior at full information,
  the ceiling a perfect scenario model would give;

then `num_cf` rollouts of the planner lambda = beta lambda_expert + (1 - beta) pi per scenario
and return-weighted regression (`search.make_search`). CF-GPS and the GPS-like baseline reject
posterior samples that contradict their history (`scenario.sample_consistent_levels`, up to
`posterior_tries` samples) [O]. The model-free baseline is A2C (`agents.a2c`; the paper's is
IMPALA) on PO-Sokoban itself, trained on the same training levels for exactly
`iterations * episodes_per_iteration * horizon` environment frames: at least the frames of the
other methods' real episodes (theirs end early when solved), so the comparison does not favour
the model-based methods. A2C's policy acts on the current observation [O: its standard conv
torso; the model-based methods' pi has a running summary of the history].

The metric (the paper's): the solve rate (and return) of pi on the held-out levels after each
iteration (one sampled episode per held-out level; the same keys for every method), against
the real episodes used so far; also the solve rate of the real training episodes themselves.

The scenario model (prior and posteriors) is trained once per run on uniformly random behaviour
episodes of the training levels, exactly as the policy-evaluation experiment's
(`pe_experiment`), and cached (`scenario.train_cached`): with the same bank, seed, model and
training config both experiments share one trained model.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

import jax
import numpy as np

from agents import a2c
from agents.cfgps import episodes as ep_lib
from agents.cfgps import pe_experiment
from agents.cfgps import scenario as sc
from agents.cfgps import search as search_lib
from agents.cfgps import solver as solver_lib
from envs import po_sokoban, sokoban

METHODS = ("cfgps", "gps", "mbps", "cf_true", "a2c")
MODEL_BASED = ("cfgps", "gps", "mbps", "cf_true")
LABELS = {"cfgps": "CF-GPS (p(U | h_T))", "gps": "GPS-like (p(U | h_1))",
          "mbps": "MB-PS (prior p(U))", "cf_true": "CF-GPS, true level [O]",
          "a2c": "A2C (model-free)"}
PS_T_SET = (0, 1, 5, 10, 20, 30, 40, 50)  # the PE experiment's t and t = 1 (GPS-like)


@dataclasses.dataclass(frozen=True)
class PSConfig(pe_experiment.RoomBankConfig):
  """The policy-search experiment (the room, bank and seed fields: `RoomBankConfig`)."""
  num_heldout: int = 256                  # the bank's last levels, never trained on (PE's)
  num_eval_levels: int = 128              # of them, the levels pi is evaluated on
  methods: tuple = ("cfgps", "gps", "mbps", "a2c")
  num_seeds: int = 2                      # policy-search seeds (one scenario model)
  iterations: int = 8                     # rounds of real episodes
  episodes_per_iteration: int = 32        # real episodes per round
  gps_t: int = 1                          # the GPS-like baseline's history length
  posterior_tries: int = 4                # samples per episode to find one consistent with h_t
  search: search_lib.SearchConfig = search_lib.SearchConfig()
  scenario: sc.ScenarioConfig = sc.ScenarioConfig(t_set=PS_T_SET)
  scenario_chunks: int = 30               # training chunks of the scenario model
  cache_dir: str | None = None            # scenario-model cache (None: no cache)
  a2c: a2c.A2CConfig = a2c.default_config(num_envs=16, rollout_length=5)


def check_config(config: PSConfig) -> None:
  """Refuses a bad config by field name before anything is computed."""
  unknown = sorted(set(config.methods) - set(METHODS))
  if unknown or not config.methods:
    raise ValueError(f"config.methods must be a non-empty subset of {METHODS}; got "
                     f"{config.methods!r}")
  for name in ("num_seeds", "iterations", "episodes_per_iteration", "num_eval_levels",
               "posterior_tries", "scenario_chunks"):
    v = getattr(config, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
      raise ValueError(f"config.{name} must be a positive integer; got {v!r}")
  if not 0 <= config.gps_t <= config.horizon:
    raise ValueError(f"config.gps_t: t={config.gps_t} is beyond the episode length "
                     f"config.horizon={config.horizon}")
  if config.num_eval_levels > config.num_heldout:
    raise ValueError(f"config.num_eval_levels={config.num_eval_levels} exceeds the held-out "
                     f"levels config.num_heldout={config.num_heldout}")
  if "gps" in config.methods and config.gps_t not in config.scenario.t_set:
    raise ValueError(f"config.gps_t={config.gps_t} is not a history length the scenario model "
                     f"is trained on (config.scenario.t_set={config.scenario.t_set})")
  if "cfgps" in config.methods and config.horizon not in config.scenario.t_set:
    raise ValueError(f"config.horizon={config.horizon} (CF-GPS's t = T) is not in "
                     f"config.scenario.t_set={config.scenario.t_set}")
  frames = config.episodes_per_iteration * config.horizon
  per_update = config.a2c.num_envs * config.a2c.rollout_length
  if "a2c" in config.methods and frames % per_update:
    raise ValueError(f"config.a2c: episodes_per_iteration * horizon = {frames} frames per "
                     f"iteration is not a multiple of num_envs * rollout_length = {per_update}")


def infer_scenarios(method: str, key: jax.Array, config: PSConfig, scenario_params, env,
                    env_params, real: ep_lib.Episode):
  """The scenario of each real episode for `method` (module docstring): `(levels [N], replay
  episodes [N] whose reset and step keys the counterfactual rollouts reuse, consistent [N]
  bool: the level agrees with the history it was inferred from)`.

  MB-PS reads nothing of `real` but its batch size: the prior is the posterior at t = 0, whose
  history summary is empty, and its noise keys are fresh. The other methods refuse real
  episodes inconsistent with their recorded level (`episodes.check_episodes`)."""
  n, horizon = real.action.shape
  if method != "mbps":  # a real episode inconsistent with its recorded level is refused
    ep_lib.check_episodes(env, env_params, real, "real episodes")
  if method == "cf_true":
    return real.level, real, np.ones(n, bool)
  if method == "mbps":
    levels, _ = sc.sample_levels(key, config.scenario, scenario_params, real, 0, env.num_boxes)
    k_reset, k_steps = jax.random.split(jax.random.fold_in(key, 1))
    fresh = real._replace(level=levels, reset_key=jax.random.split(k_reset, n),
                          step_keys=jax.random.split(k_steps, n * horizon).reshape(
                              (n, horizon) + real.step_keys.shape[2:]))
    return levels, fresh, np.ones(n, bool)
  t = {"cfgps": horizon, "gps": config.gps_t}[method]
  levels, found = sc.sample_consistent_levels(key, config.scenario, scenario_params, env,
                                              env_params, real, t, config.posterior_tries)
  return levels, real, np.asarray(found)


@functools.lru_cache(maxsize=None)
def a2c_policy_factory(network) -> Callable:
  """`params -> Policy` of an A2C actor-critic acting on the current observation."""
  def make(params):
    return ep_lib.categorical_policy(
        lambda obs, carry: (network.apply(params, obs[None])[0][0], carry))
  return make


def _evaluate(key, env, env_params, make_policy, params, levels, horizon, batch):
  """(solve rate, mean return) of one episode per level, in batches of `batch` levels (the
  real episodes' batch: one compiled rollout serves both)."""
  n = levels.num_levels
  solved, g = [], []
  for start in range(0, n, batch):
    part = levels[start:start + batch]
    eps = ep_lib.log_on_levels_theta(jax.random.fold_in(key, start), env, env_params,
                                     make_policy, params, part, horizon)
    solved.append(np.asarray(eps.terminated).any(-1))
    g.append(np.asarray(ep_lib.episode_return(eps), np.float64))
  return float(np.concatenate(solved).mean()), float(np.concatenate(g).mean())


def scenario_spec(config: PSConfig) -> dict:
  """What determines the trained scenario model (the cache key; `pe_experiment` builds the
  same from its config, so the two experiments share a model when these agree)."""
  return {"height": config.height, "width": config.width, "num_boxes": config.num_boxes,
          "horizon": config.horizon, "bank_seed": config.bank_seed,
          "num_levels": config.num_levels, "num_heldout": config.num_heldout,
          "seed": config.seed, "scenario": dataclasses.asdict(config.scenario),
          "scenario_chunks": config.scenario_chunks}


def run(config: PSConfig, log: Callable[[str], None] = print) -> dict:
  """The experiment (module docstring). Returns a dict of results: per method the curves
  `eval_solve_rate`, `eval_return` `[seeds, iterations + 1]` (after 0..iterations rounds),
  `train_solve_rate`, `train_return` `[seeds, iterations]` (the real episodes of each round),
  `real_episodes` `[iterations + 1]`, and per method diagnostics."""
  check_config(config)
  t_start = time.perf_counter()
  env = po_sokoban.POSokoban(config.height, config.width, config.num_boxes)
  bank = sokoban.generated_levels(config.height, config.width, config.num_boxes,
                                  config.num_levels, config.bank_seed)
  train_levels, heldout = sc.split_bank(bank, config.num_heldout, "the level bank")
  eval_levels = heldout[:config.num_eval_levels]
  params = env.make_params(heldout, max_steps=config.horizon)
  key = jax.random.PRNGKey(config.seed)
  k_data, k_train, _, _, _ = jax.random.split(key, 5)  # pe_experiment's data and training keys
  k_ps = jax.random.fold_in(key, 19_002)
  out: dict = {"config": dataclasses.asdict(config), "methods": {}}

  # 1. The scenario model (only the model-based methods other than cf_true use it).
  scenario_params = None
  if set(config.methods) & {"cfgps", "gps", "mbps"}:
    t0 = time.perf_counter()

    def data_fn():
      return sc.with_t_set(sc.collect(k_data, env, params, train_levels, config.horizon),
                           config.scenario.t_set)
    scenario_params, hist, loaded = sc.train_cached(
        k_train, config.scenario, data_fn, config.scenario_chunks, config.cache_dir,
        scenario_spec(config), (config.height - 2, config.width - 2),
        log=lambda i, m: log(f"scenario chunk {i + 1}/{config.scenario_chunks}: nll "
                             f"{m['loss']:.2f}"))
    out["scenario_train_s"] = time.perf_counter() - t0
    out["scenario_loaded"] = loaded
    out["scenario_final_nll"] = hist[-1]["loss"] if hist else float("nan")
    log(f"scenario model {'loaded' if loaded else 'trained'} ({out['scenario_train_s']:.0f} s)")

  solver = solver_lib.Solver(max_floor=config.max_floor, max_rooms=4096)
  search = search_lib.make_search(config.search, env, solver)
  n, iters, seeds = config.episodes_per_iteration, config.iterations, config.num_seeds
  out["real_episodes"] = [i * n for i in range(iters + 1)]
  num_train = train_levels.num_levels

  def round_levels(s, i):
    idx = jax.random.choice(jax.random.fold_in(k_ps, 1000 * s + i), num_train, (n,),
                            replace=False)
    return train_levels[np.asarray(idx)]

  def eval_key(s, i):
    return jax.random.fold_in(k_ps, 10 ** 6 + 1000 * s + i)

  # 2. The model-based methods.
  init0 = {}
  for method in [m for m in config.methods if m in MODEL_BASED]:
    t0 = time.perf_counter()
    res = {k: np.zeros((seeds, iters + (k.startswith("eval")))) for k in
           ("eval_solve_rate", "eval_return", "train_solve_rate", "train_return",
            "consistent", "cf_return", "cf_solve_rate")}
    for s in range(seeds):
      state = search.init(jax.random.fold_in(k_ps, 2_000_000 + s))
      if s not in init0:
        init0[s] = _evaluate(eval_key(s, 0), env, params, search.policy, state.params,
                             eval_levels, config.horizon, n)
      res["eval_solve_rate"][s, 0], res["eval_return"][s, 0] = init0[s]
      for i in range(iters):
        real = ep_lib.log_on_levels_theta(jax.random.fold_in(k_ps, 3_000_000 + 1000 * s + i),
                                          env, params, search.policy, state.params,
                                          round_levels(s, i), config.horizon)
        res["train_solve_rate"][s, i] = float(np.asarray(real.terminated).any(-1).mean())
        res["train_return"][s, i] = float(np.mean(np.asarray(ep_lib.episode_return(real))))
        k_inf = jax.random.fold_in(k_ps, 4_000_000 + 1000 * s + i)
        levels, replay, consistent = infer_scenarios(method, k_inf, config, scenario_params,
                                                     env, params, real)
        res["consistent"][s, i] = float(consistent.mean())
        state, m = search.iterate(jax.random.fold_in(k_ps, 5_000_000 + 1000 * s + i), state,
                                  params, replay, levels)
        res["cf_return"][s, i], res["cf_solve_rate"][s, i] = m["cf_return"], m["cf_solve_rate"]
        res["eval_solve_rate"][s, i + 1], res["eval_return"][s, i + 1] = _evaluate(
            eval_key(s, i + 1), env, params, search.policy, state.params, eval_levels,
            config.horizon, n)
        log(f"{method} seed {s} round {i + 1}/{iters}: real solved "
            f"{res['train_solve_rate'][s, i]:.2f}, scenario consistent {consistent.mean():.2f}, "
            f"cf return {m['cf_return']:.2f} (solved {m['cf_solve_rate']:.2f}), beta "
            f"{m['beta']:.2f}, held-out solve rate {res['eval_solve_rate'][s, i + 1]:.3f} "
            f"return {res['eval_return'][s, i + 1]:.2f} ({time.perf_counter() - t0:.0f} s)")
    res = {k: v.tolist() for k, v in res.items()}
    res["wall_s"] = time.perf_counter() - t0
    out["methods"][method] = res

  # 3. A2C on the same training levels, the same real frames.
  if "a2c" in config.methods:
    t0 = time.perf_counter()
    frames = n * config.horizon
    cfg = dataclasses.replace(
        config.a2c, updates_per_chunk=frames // (config.a2c.num_envs * config.a2c.rollout_length),
        num_chunks=iters)
    trainer = a2c.make_trainer(cfg, env, env.make_params(train_levels,
                                                         max_steps=config.horizon),
                               env_name="po-sokoban")
    chunk = jax.jit(trainer.chunk)
    make_pi = a2c_policy_factory(trainer.network)
    res = {k: np.zeros((seeds, iters + (k.startswith("eval")))) for k in
           ("eval_solve_rate", "eval_return", "train_solve_rate", "train_return",
            "train_episodes", "frames")}
    for s in range(seeds):
      ts = trainer.init(jax.random.fold_in(k_ps, 6_000_000 + s))
      res["eval_solve_rate"][s, 0], res["eval_return"][s, 0] = _evaluate(
          eval_key(s, 0), env, params, make_pi, ts.params, eval_levels, config.horizon, n)
      for i in range(iters):
        ts, m = chunk(ts)
        episodes = float(np.sum(m["episodes"]))
        res["train_episodes"][s, i] = episodes
        res["train_solve_rate"][s, i] = float(np.sum(m["episode_solved_sum"])) / max(episodes, 1)
        res["train_return"][s, i] = float(np.sum(m["episode_return_sum"])) / max(episodes, 1)
        res["frames"][s, i] = int(ts.frames)
        res["eval_solve_rate"][s, i + 1], res["eval_return"][s, i + 1] = _evaluate(
            eval_key(s, i + 1), env, params, make_pi, ts.params, eval_levels, config.horizon, n)
      log(f"a2c seed {s}: {int(ts.frames)} frames, held-out solve rate "
          f"{res['eval_solve_rate'][s, -1]:.3f} return {res['eval_return'][s, -1]:.2f} "
          f"({time.perf_counter() - t0:.0f} s)")
    res = {k: v.tolist() for k, v in res.items()}
    res["wall_s"] = time.perf_counter() - t0
    out["methods"]["a2c"] = res

  out["solver_rooms"] = solver.rooms_built
  out["solver_rooms_skipped"] = solver.rooms_skipped
  out["wall_s"] = time.perf_counter() - t_start
  return out


def final_stats(res: dict, metric: str) -> tuple[float, float]:
  """Mean over seeds of a method's final `metric` (`eval_solve_rate` or `eval_return`) and its
  standard error over seeds (0 for one seed)."""
  x = np.asarray(res[metric], np.float64)[:, -1]
  se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
  return float(x.mean()), se


def area_stats(res: dict, metric: str) -> tuple[float, float]:
  """Mean over seeds of a method's `metric` averaged over the curve after round 1..end (the
  area under the learning curve per round), and its standard error over seeds."""
  x = np.asarray(res[metric], np.float64)[:, 1:].mean(1)
  se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
  return float(x.mean()), se


def eval_episode_se(rate: float, num_levels: int, num_seeds: int) -> float:
  """The binomial standard error of a solve rate from `num_levels` episodes per seed."""
  return float(np.sqrt(max(rate * (1 - rate), 0.0) / (num_levels * num_seeds)))

