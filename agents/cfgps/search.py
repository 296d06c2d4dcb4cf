"""CF-GPS policy search (Buesing et al. 2019, Sec. 4 and Alg. 2; issue 19): a learned policy
pi_theta improved by return-weighted regression onto counterfactual rollouts of a planner.

One iteration (`cfgps_iteration`):
1. real episodes of the current policy pi (logged: level, noise keys, observations);
2. for each, a scenario U ~ p(U | h_T) from the learned posterior (`agents.cfgps.scenario`);
   MB-PS draws it from the prior p(U) instead, a GPS-like baseline from p(U | h_1), the
   first observation only [O: t = 1, the issue's "conditioned on the first observation"];
3. `num_cf` (10 in the paper) counterfactual rollouts per scenario of the planner
   lambda = beta lambda_expert + (1 - beta) pi (a per-step mixture of the two action
   distributions; `planner_policy`), in the inferred level with the logged observation
   noise (`episodes.counterfactual_rollout`); lambda_expert is the solver expert of
   `agents.cfgps.solver`, which plans in the inferred level (the planner's privileged access
   to the scenario, as GPS's local controllers have);
4. return-weighted regression (the paper's Eq. (1) as we state it):
   max_theta sum_i sum_k w_ik sum_t log pi_theta(a_t^ik | h_t^ik), with w_ik = softmax_k(G_ik /
   temperature) over the num_cf rollouts of scenario i [O: the exponentiated-return weights of
   reward-weighted regression (Peters and Schaal 2007). The paper's own Eq. (1) could not be
   read here: of the paper's text the stored copies return only the abstract and the opening
   of the introduction (searched in session 15), so the weighting stays our choice; with a
   high temperature it tends to plain imitation of the planner, with a low one to imitation
   of the best of the num_cf rollouts];
5. beta <- beta * beta_decay (the planner hands over from the expert to pi).

The policy (`PolicyNet`, `network_policy`) acts on its observation history through a forward
running summary in its carry [O: per tile and non-floor code, whether and how often it was
seen and exp(-(t - last sighting) / 5), plus the current observation; cheaper than a
recurrent network on 2 CPU cores, and it sees what a memory of the room would].
"""
from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents.cfgps import episodes as ep_lib
from agents.cfgps import solver as solver_lib
from agents.cfgps.episodes import Policy
from envs import sokoban

CODES = jnp.asarray((sokoban.WALL, sokoban.TARGET, sokoban.BOX_ON_TARGET, sokoban.BOX,
                     sokoban.PLAYER, sokoban.PLAYER_ON_TARGET))
TAU = 5.0
NUM_FEATURES = 3 * 6 + 7  # seen, count, recency per non-floor code; the observation


class Summary(NamedTuple):
  """The policy's forward running summary of its observation history."""
  count: jax.Array  # [H, W, 6] sightings of each non-floor code
  last: jax.Array   # [H, W, 6] step of the latest sighting (-1: never)
  t: jax.Array      # int32 steps seen


def init_summary(height: int, width: int) -> Summary:
  z = jnp.zeros((height, width, CODES.shape[0]))
  return Summary(z, z - 1.0, jnp.int32(0))


def update_summary(s: Summary, obs: jax.Array) -> tuple[Summary, jax.Array]:
  """Adds observation `obs` (one-hot `[H, W, 7]`); returns the features `[H, W, NUM_FEATURES]` the
  policy acts on: seen, count / 50, exp(-(t - last) / 5) per code, and `obs` itself."""
  codes = jnp.argmax(obs, -1)
  seen = (codes[..., None] == CODES).astype(jnp.float32)
  count = s.count + seen
  last = jnp.where(seen > 0, s.t.astype(jnp.float32), s.last)
  s = Summary(count, last, s.t + 1)
  recent = jnp.where(last >= 0, jnp.exp(-(s.t - 1 - last) / TAU), 0.0)
  feats = jnp.concatenate([(count > 0).astype(jnp.float32), count / 50.0, recent, obs], -1)
  return s, feats


class PolicyNet(nn.Module):
  """Logits over the 5 actions from the summary features `[..., H, W, NUM_FEATURES]`."""
  channels: int = 16
  hidden: int = 64

  @nn.compact
  def __call__(self, feats):
    h = nn.relu(nn.Conv(self.channels, (3, 3))(feats))
    h = nn.relu(nn.Conv(self.channels, (3, 3))(h))
    h = h.reshape(h.shape[:-3] + (-1,))
    h = nn.relu(nn.Dense(self.hidden)(h))
    return nn.Dense(solver_lib.NUM_ACTIONS)(h)


def network_policy(net: PolicyNet, params, height: int, width: int) -> Policy:
  """pi_theta as an `agents.cfgps.Policy` (the carry is the running `Summary`)."""
  def logits_fn(obs, carry):
    carry, feats = update_summary(carry, obs)
    return net.apply(params, feats), carry
  return ep_lib.categorical_policy(logits_fn, init=lambda: init_summary(height, width))


def planner_probs(expert_probs: jax.Array, pi_logits: jax.Array, beta) -> jax.Array:
  """lambda(. | .) = beta lambda_expert + (1 - beta) pi: `[5]`."""
  return beta * expert_probs + (1.0 - beta) * jax.nn.softmax(pi_logits)


def planner_policy(solver: solver_lib.Solver, expert_epsilon: float, net: PolicyNet, params,
                   beta: float, height: int, width: int) -> Policy:
  """The planner lambda = beta lambda_expert + (1 - beta) pi (module docstring): the expert
  (epsilon-noisy solver, seeing the state of the level it is rolled out in) and pi mixed per
  step; the carry holds the expert's state and pi's summary."""
  moves = jnp.asarray(solver_lib._MOVES5)

  def probs(obs, carry):
    state, summ = carry
    summ, feats = update_summary(summ, obs)
    p_exp = solver_lib.expert_probs(solver_lib.expert_action(solver, state), expert_epsilon)
    return planner_probs(p_exp, net.apply(params, feats), beta), (state, summ)

  def act(key, obs, carry):
    p, (state, summ) = probs(obs, carry)
    a = jax.random.categorical(key, jnp.log(p)).astype(jnp.int32)
    state, _ = sokoban.push(state, moves[a])
    return a, jnp.log(p[a]), (state, summ)

  def log_prob(obs, carry, a):
    p, (state, summ) = probs(obs, carry)
    state, _ = sokoban.push(state, moves[a])
    return jnp.log(p[a]), (state, summ)

  def init_level(level):
    return (solver_lib.state_from_level(level), init_summary(height, width))

  return Policy(act, log_prob, init=tuple, init_level=init_level)


def return_weights(returns: jax.Array, temperature: float) -> jax.Array:
  """w_ik = softmax_k(G_ik / temperature) over the rollouts k of each scenario i: `[N, K]`."""
  return jax.nn.softmax(returns / temperature, axis=-1)


def episode_features(obs, height: int, width: int) -> jax.Array:
  """The features pi acts on at every step of one episode: `[T, H, W, NUM_FEATURES]` from its
  observations `[T + 1, H, W, 7]` (the running summary does not depend on theta, so a fit
  computes them once)."""
  _, feats = jax.lax.scan(update_summary, init_summary(height, width), obs[:-1])
  return feats


def feature_log_probs(net: PolicyNet, params, feats, actions, valid) -> jax.Array:
  """sum_t log pi_theta(a_t | h_t) over the valid steps, from precomputed features `[..., T,
  H, W, F]` (any leading batch axes): `[...]`."""
  logp = jax.nn.log_softmax(net.apply(params, feats))
  lp = jnp.take_along_axis(logp, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return jnp.sum(jnp.where(valid, lp, 0.0), axis=-1)


def sequence_log_probs(net: PolicyNet, params, obs, actions, valid, height, width) -> jax.Array:
  """sum_t log pi_theta(a_t | h_t) over the valid steps of one episode (obs `[T + 1, H, W, 7]`)."""
  return feature_log_probs(net, params, episode_features(obs, height, width), actions, valid)


def rwr_loss(net: PolicyNet, params, episodes: ep_lib.Episode, weights: jax.Array, height: int,
             width: int) -> jax.Array:
  """-(1 / N) sum_i sum_k w_ik sum_t log pi(a_t^ik | h_t^ik): the return-weighted regression
  (module docstring, Eq. (1)); `episodes` `[N * K]` (scenario-major), `weights` `[N, K]`."""
  feats = jax.vmap(lambda o: episode_features(o, height, width))(episodes.obs)
  lp = feature_log_probs(net, params, feats, episodes.action, episodes.valid)
  n = weights.shape[0]
  return -jnp.sum(weights.reshape(-1) * lp) / n


def resample_rollouts(key: jax.Array, weights: jax.Array, num: int) -> jax.Array:
  """Indices `[N, num]` into the `[N * K]` rollouts (scenario-major): per scenario i, `num`
  draws k ~ Categorical(w_i.) with replacement [O]. The mean of sum_t log pi over the drawn
  rollouts is an unbiased estimate of sum_k w_ik sum_t log pi, the regression's per-scenario
  term, at num / K of its cost."""
  n, k = weights.shape
  draws = jax.random.categorical(key, jnp.log(weights)[:, None, :], axis=-1,
                                 shape=(n, num))
  return draws + k * jnp.arange(n)[:, None]


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """CF-GPS policy search."""
  num_cf: int = 10               # counterfactual rollouts per inferred scenario (paper: 10)
  beta0: float = 1.0             # planner's initial weight on the expert
  beta_decay: float = 0.8        # beta <- beta * beta_decay per iteration
  expert_epsilon: float = 0.05   # the expert's action noise (probabilities stay positive)
  temperature: float = 1.0       # return-weighted regression: softmax temperature on returns
  learning_rate: float = 1e-3    # Adam
  updates_per_iteration: int = 20  # Adam steps on each iteration's rollouts (full batch)
  # Rollouts per scenario the regression is fitted on, drawn with probabilities w_ik
  # (`resample_rollouts`; 0: all num_cf, weighted exactly) [O: the cost of a fit on 2 CPU cores].
  regression_samples: int = 0
  minibatch: int = 0             # rollouts per Adam step, drawn uniformly (0: all of them)
  channels: int = 16             # policy network width
  hidden: int = 64               # policy network dense layer


class SearchState(NamedTuple):
  params: object
  opt_state: object
  beta: jax.Array
  iteration: int


class Search(NamedTuple):
  """What `make_search` returns: the policy network, `init(key) -> SearchState`,
  `iterate(key, state, env_params, real, levels) -> (state, metrics)`, and the two policy
  factories, `policy(params)` (pi_theta) and `planner((params, beta))` (lambda), built once so
  that the rollouts of every iteration share one compilation
  (`episodes.log_on_levels_theta`, `counterfactual_rollout_theta`)."""
  net: PolicyNet
  init: Callable
  iterate: Callable
  policy: Callable
  planner: Callable


@functools.lru_cache(maxsize=None)
def policy_factory(net: PolicyNet, height: int, width: int) -> Callable:
  """`params -> network_policy(net, params, height, width)`, one object per (net, room size)."""
  return lambda params: network_policy(net, params, height, width)


def make_search(config: SearchConfig, env, solver: solver_lib.Solver) -> Search:
  """One CF-GPS iteration (`Search.iterate`) on given real episodes `[N]` and inferred
  scenario levels `[N]` (from the posterior for CF-GPS, the prior for MB-PS, p(U | h_1) for
  the GPS-like baseline): `num_cf` counterfactual rollouts of the planner per scenario,
  return-weighted regression of pi onto them, beta decayed."""
  if config.num_cf < 1:
    raise ValueError(f"config.num_cf must be a positive integer; got {config.num_cf!r}")
  if not 0.0 <= config.beta0 <= 1.0 or not 0.0 <= config.beta_decay <= 1.0:
    raise ValueError(f"config.beta0 and config.beta_decay must be in [0, 1]; got "
                     f"{config.beta0!r}, {config.beta_decay!r}")
  if not config.temperature > 0:
    raise ValueError(f"config.temperature must be positive; got {config.temperature!r}")
  if not (0 <= config.regression_samples and 0 <= config.minibatch):
    raise ValueError(f"config.regression_samples and config.minibatch must be >= 0; got "
                     f"{config.regression_samples!r}, {config.minibatch!r}")
  net = PolicyNet(config.channels, config.hidden)
  h, w = env.height, env.width
  opt = optax.adam(config.learning_rate)
  pi_of = policy_factory(net, h, w)

  def planner_of(theta):
    params, beta = theta
    return planner_policy(solver, config.expert_epsilon, net, params, beta, h, w)

  def init(key):
    params = net.init(key, jnp.zeros((h, w, NUM_FEATURES)))
    return SearchState(params, opt.init(params), jnp.float32(config.beta0), 0)

  @jax.jit
  def _prepare(key, cf, weights):
    feats = jax.vmap(lambda o: episode_features(o, h, w))(cf.obs)
    if config.regression_samples:
      idx = resample_rollouts(key, weights, config.regression_samples).reshape(-1)
      wts = jnp.full((idx.shape[0],), 1.0 / config.regression_samples)
      return feats[idx], cf.action[idx], cf.valid[idx], wts
    return feats, cf.action, cf.valid, weights.reshape(-1)

  @functools.partial(jax.jit, static_argnames=("n",))
  def _step(key, params, opt_state, feats, actions, valid, wts, n):
    b = wts.shape[0]
    if config.minibatch and config.minibatch < b:
      # a uniform minibatch, rescaled by b / minibatch: an unbiased estimate of the loss
      idx = jax.random.choice(key, b, (config.minibatch,), replace=False)
      feats, actions, valid = feats[idx], actions[idx], valid[idx]
      wts = wts[idx] * (b / config.minibatch)

    def loss_fn(p):
      return -jnp.sum(wts * feature_log_probs(net, p, feats, actions, valid)) / n
    loss, g = jax.value_and_grad(loss_fn)(params)
    upd, opt_state = opt.update(g, opt_state, params)
    return optax.apply_updates(params, upd), opt_state, loss

  def _fit(key, params, opt_state, cf, weights):
    # [O] Adam steps from a host loop of jitted steps: XLA's CPU convolutions inside a
    # lax.scan ran about 20x slower than the same step jitted alone (measured: 12 s vs 0.6 s
    # per step on 64 rollouts x 50 steps).
    batch = _prepare(key, cf, weights)
    losses = []
    for i in range(config.updates_per_iteration):
      params, opt_state, loss = _step(jax.random.fold_in(key, i + 1), params, opt_state, *batch,
                                      n=weights.shape[0])
      losses.append(loss)
    return params, opt_state, jnp.stack(losses)

  def iterate(key, state: SearchState, env_params, real: ep_lib.Episode, levels):
    t0 = time.perf_counter()
    n = real.action.shape[0]
    k = config.num_cf
    rep = jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), real)
    rep_levels = jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), levels)
    cf = ep_lib.counterfactual_rollout_theta(env, env_params, rep, planner_of,
                                             (state.params, jnp.float32(state.beta)), key=key,
                                             level=rep_levels)
    g = ep_lib.episode_return(cf).reshape(n, k)
    weights = return_weights(g, config.temperature)
    t1 = time.perf_counter()
    params, opt_state, losses = _fit(jax.random.fold_in(key, 1), state.params, state.opt_state,
                                     cf, weights)
    losses = np.asarray(losses)
    solved = np.asarray(cf.terminated).any(-1)
    metrics = {"cf_return": float(jnp.mean(g)), "cf_best_return": float(jnp.mean(g.max(1))),
               "cf_solve_rate": float(solved.mean()),
               "loss_first": float(losses[0]), "loss_last": float(losses[-1]),
               "beta": float(state.beta), "rollout_s": t1 - t0,
               "fit_s": time.perf_counter() - t1}
    new = SearchState(params, opt_state, state.beta * config.beta_decay, state.iteration + 1)
    return new, metrics

  return Search(net, init, iterate, pi_of, planner_of)


def evaluate_policy(key, env, env_params, net: PolicyNet, params, levels, horizon=None):
  """Return and solve rate of pi_theta on real episodes, one per level."""
  eps = ep_lib.log_on_levels_theta(key, env, env_params,
                                   policy_factory(net, env.height, env.width), params, levels,
                                   horizon)
  g = np.asarray(ep_lib.episode_return(eps))
  return {"return": float(g.mean()), "return_se": float(g.std() / np.sqrt(len(g))),
          "solve_rate": float(np.asarray(eps.terminated).any(-1).mean())}
