"""Off-policy evaluation of a target policy pi from episodes logged under a behaviour policy
mu (CF-GPS; Buesing et al. 2019, Sec. 3 and the policy-evaluation experiment of Sec. 5).

Every estimator has one signature and returns an `Estimate` of J(pi) = E_pi[sum_t r_t]:

    estimate = ESTIMATORS[name](key, env, params, episodes, target, **options)
    estimate = evaluate(name, key, env, params, episodes, target, **options)

- "is": per-episode importance sampling, (1/N) sum_i w_i G_i with
  w_i = prod_t pi(a_t | h_t) / mu(a_t | h_t) over the episode's steps (unbiased; Sec. 3.1's
  IS baseline).
- "wis": the weighted (self-normalised) version sum_i w_i G_i / sum_i w_i (consistent, biased
  for finite N, lower variance).
- "cf": CF-PE (Sec. 3.2, Alg. 1): for each logged episode, a scenario U ~ p(U | h_t) is inferred
  and pi is rolled out counterfactually in it (the logged observation noise, a level from the
  posterior); the estimate is the mean counterfactual return. `posterior(key, history, t) ->
  level` (one episode; `history` is `episodes.history(., t)`) defaults to the exact level,
  the posterior at full information, for which CF-PE is unbiased.
- "mb": MB-PE (Sec. 3.2, the model-based baseline): pi is rolled out in the model with the
  scenario drawn from the prior, a fresh level (`prior(key) -> level`, default the env's own
  level source `params`, i.e. the true prior) and fresh observation noise, one rollout per
  logged episode. With the true prior it is unbiased; with a learned prior its bias is the
  prior's, which is what CF-PE's posterior removes.

`Estimate.stderr` is the standard error of the mean of `per_episode` (the delta method for
"wis"); `ess` is the importance weights' effective sample size (sum w)^2 / sum w^2 (N for the
model-based estimators).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents.cfgps import episodes as ep_lib
from agents.cfgps.episodes import Episode, Policy


class Estimate(NamedTuple):
  """An estimate of J(pi) from N episodes."""
  value: jax.Array        # the estimate of J(pi)
  stderr: jax.Array       # its standard error
  per_episode: jax.Array  # [N] the terms averaged (IS: w_i G_i; WIS: N w_i G_i / sum w; CF/MB: G)
  weight: jax.Array       # [N] importance weights (ones for "cf" and "mb")
  ess: jax.Array          # effective sample size of the weights


# ------------------------------------------------------------------------ importance sampling
@functools.partial(jax.jit, static_argnames=("policy",))
def _log_probs_jit(episodes: Episode, *, policy: Policy):
  def one(ep):
    def body(carry, xs):
      obs, action = xs
      logp, carry = policy.log_prob(obs, carry, action)
      ep_lib._check_scalar(logp, "target policy")
      return carry, jnp.asarray(logp, float)
    obs = jax.tree.map(lambda x: x[:-1], ep.obs)
    return jax.lax.scan(body, policy.initial_carry(ep.level), (obs, ep.action))[1]
  return jax.vmap(one)(episodes)


def target_log_probs(episodes: Episode, target: Policy) -> jax.Array:
  """log pi(a_t | h_t) of the logged actions along the logged histories: `[N, T]` (0 on steps
  after an episode's end). Refuses NaN or positive log-probabilities by naming the target."""
  ep_lib._check_policy(target, "target", need_log_prob=True)
  ep_lib._check_episodes_shape(episodes)
  logp = _log_probs_jit(episodes, policy=target)
  ep_lib.check_log_probs(logp, episodes.valid, "target policy", allow_neg_inf=True)
  return jnp.where(episodes.valid, logp, 0.0)


def importance_weights(episodes: Episode, target: Policy) -> jax.Array:
  """Per-episode weights w_i = prod_t pi(a_t | h_t) / mu(a_t | h_t) over the valid steps:
  `[N]`, computed in log space."""
  ep_lib.check_log_probs(episodes.log_prob, episodes.valid, "behaviour policy (episodes.log_prob)")
  log_w = jnp.sum(target_log_probs(episodes, target)
                  - jnp.where(episodes.valid, episodes.log_prob, 0.0), axis=-1)
  return jnp.exp(log_w)


def _mean_estimate(per_episode, weight) -> Estimate:
  n = per_episode.shape[0]
  stderr = (jnp.std(per_episode, ddof=1) / jnp.sqrt(n)) if n > 1 else jnp.float32(jnp.nan)
  ess = jnp.sum(weight) ** 2 / jnp.sum(weight ** 2)
  return Estimate(jnp.mean(per_episode), stderr, per_episode, weight, ess)


def importance_sampling(key, env, params, episodes: Episode, target: Policy) -> Estimate:
  """Ordinary per-episode IS: mean of w_i G_i (unbiased for J(pi))."""
  del key, env, params
  w = importance_weights(episodes, target)
  return _mean_estimate(w * ep_lib.episode_return(episodes), w)


def weighted_importance_sampling(key, env, params, episodes: Episode,
                                 target: Policy) -> Estimate:
  """Self-normalised per-episode IS: sum_i w_i G_i / sum_i w_i; stderr by the delta method,
  sqrt(sum_i w_i^2 (G_i - V)^2) / sum_i w_i."""
  del key, env, params
  w = importance_weights(episodes, target)
  g = ep_lib.episode_return(episodes)
  total = jnp.sum(w)
  value = jnp.sum(w * g) / total
  stderr = jnp.sqrt(jnp.sum(w ** 2 * (g - value) ** 2)) / total
  n = g.shape[0]
  return Estimate(value, stderr, n * w * g / total, w, total ** 2 / jnp.sum(w ** 2))


# ------------------------------------------------------------------------ model-based estimators
def exact_level(key, history: Episode, t: int):
  """The posterior at full information: the episode's true level (privileged)."""
  del key, t
  return history.level


@functools.partial(jax.jit, static_argnames=("posterior", "t"))
def _posterior_levels(key, hist, *, posterior, t):
  keys = jax.random.split(key, hist.action.shape[0])
  return jax.vmap(lambda k, h: posterior(k, h, t))(keys, hist)


def counterfactual_pe(key, env, params, episodes: Episode, target: Policy, *,
                      posterior: Callable | None = None, t: int | None = None,
                      check: bool = True, levels=None) -> Estimate:
  """CF-PE (CF-GPS Sec. 3.2, Alg. 1): the mean over logged episodes of pi's counterfactual
  return in the scenario inferred from h_t: a level from `posterior(key, history, t)` (default
  `exact_level`), the logged observation noise (reset and step keys), and fresh action keys
  for pi from `key`. `t` (default T) must not exceed the logged horizon. With `check`, the
  episodes are first checked against their recorded levels (`episodes.check_episodes`).
  `levels` ([N], instead of `posterior`): scenario levels already drawn from p(U | h_t), one per
  episode [O: lets several targets share one set of posterior samples, a paired comparison,
  and the sampler be compiled once for every t]."""
  ep_lib._check_policy(target, "target")
  ep_lib._check_episodes_shape(episodes)
  t = episodes.horizon if t is None else t
  hist = ep_lib.history(episodes, t)  # refuses a t beyond the episode length
  if check:
    ep_lib.check_episodes(env, params, episodes)
  k_post, k_act = jax.random.split(key)
  if levels is not None:
    if posterior is not None:
      raise ValueError("give counterfactual_pe either posterior or levels, not both")
    level = levels
  elif posterior is None:
    level = episodes.level
  else:
    level = _posterior_levels(k_post, hist, posterior=posterior, t=t)
  cf = ep_lib.counterfactual_rollout(env, params, episodes, target, key=k_act, level=level)
  g = ep_lib.episode_return(cf)
  return _mean_estimate(g, jnp.ones_like(g))


@functools.partial(jax.jit, static_argnames=("env", "policy", "prior", "num_episodes",
                                             "horizon"))
def _mb_jit(key, params, *, env, policy, prior, num_episodes, horizon):
  def one(k):
    k_level, k_reset, k_steps, k_actions = jax.random.split(k, 4)
    level = prior(k_level)
    return ep_lib._run(env, params, policy, level, k_reset, jax.random.split(k_steps, horizon),
                       jax.random.split(k_actions, horizon), None, "target policy")
  return jax.vmap(one)(jax.random.split(key, num_episodes))


def model_based_pe(key, env, params, episodes: Episode, target: Policy, *,
                   prior: Callable | None = None, levels=None) -> Estimate:
  """MB-PE (CF-GPS Sec. 3.2): the mean return of pi over N = len(episodes) rollouts in the
  model with the scenario from the prior: a fresh level (`prior(key) -> level`; default the
  env's level source, `env.reset(key, params)`'s level) and fresh observation noise, over the
  logged horizon. The logged episodes give only N and T: nothing is inferred from them.
  `levels` ([N], instead of `prior`): levels already drawn from the prior, one per rollout
  (fresh noise and action keys from `key`) [O: shared by several targets]."""
  ep_lib._check_policy(target, "target")
  ep_lib._check_episodes_shape(episodes)
  ep_lib._check_env(env)
  n, horizon = episodes.action.shape
  horizon = ep_lib.check_horizon(horizon, params)
  if levels is not None:
    if prior is not None:
      raise ValueError("give model_based_pe either prior or levels, not both")
    eps = ep_lib.log_on_levels(key, env, params, target, levels, horizon)
  elif prior is None:
    if n < 1:
      raise ValueError("episodes must hold at least one episode")
    eps = ep_lib.log_episodes(key, env, params, target, n, horizon)
  else:
    eps = _mb_jit(key, params, env=env, policy=target, prior=prior, num_episodes=n,
                  horizon=horizon)
    ep_lib.check_log_probs(eps.log_prob, eps.valid, "target policy")
  g = ep_lib.episode_return(eps)
  return _mean_estimate(g, jnp.ones_like(g))


ESTIMATORS: dict[str, Callable[..., Estimate]] = {
    "is": importance_sampling,
    "wis": weighted_importance_sampling,
    "cf": counterfactual_pe,
    "mb": model_based_pe,
}


def evaluate(name: str, key, env, params, episodes: Episode, target: Policy,
             **options: Any) -> Estimate:
  """J(pi) by the estimator `name` ("is", "wis", "cf", "mb"; see the module docstring)."""
  if name not in ESTIMATORS:
    raise ValueError(f"estimator name must be one of {sorted(ESTIMATORS)}; got {name!r}")
  return ESTIMATORS[name](key, env, params, episodes, target, **options)


def relative_error(estimate, true_value) -> np.ndarray:
  """|estimate - J| / |J| (the paper's policy-evaluation metric)."""
  return np.abs(np.asarray(estimate) - np.asarray(true_value)) / np.abs(np.asarray(true_value))
