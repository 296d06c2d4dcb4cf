"""Logged episodes and counterfactual replay (CF-GPS; Buesing et al. 2019, Sec. 2-3, Alg. 1).

A structural causal model (SCM) of a POMDP writes every random choice of the environment as a
function of exogenous noise U. In PO-Sokoban (`envs.po_sokoban`) U is the level and the
per-step observation noise, and both are explicit: the level is read back with `level_of`,
the noise of a call is keyed by that call's key. An `Episode` therefore logs everything needed
to replay its scenario: the level, the reset key, the step keys (the noise), and beside them
the behaviour policy's action keys, actions, log-probabilities, rewards and observations.

- `log_episodes`: N episodes of a behaviour policy mu (`lax.scan` over steps, `vmap` over
  episodes, one jit).
- `counterfactual_rollout`: Alg. 1's counterfactual step: the logged level and keys (the
  scenario U, here at full information) replayed under another policy; under the behaviour
  policy with the logged action keys it reproduces the logged episode exactly.
- `replay_actions` / `check_episodes`: the logged actions replayed on the recorded level with
  the logged keys; a logged episode whose observations or rewards differ is inconsistent with
  its level and is refused by name.
- `history`: the first t steps of an episode (h_t, what a posterior p(U | h_t) conditions on).

Policies act on the observation history through a carry (so recurrent policies fit):

    policy = Policy(act, log_prob, init)
    act(key, obs, carry) -> (action, log_prob, carry)     # samples a_t ~ pi(. | h_t)
    log_prob(obs, carry, action) -> (log_prob, carry)     # log pi(a_t | h_t) of a given action
    init() -> carry                                       # the carry before the first step
    init_level(level) -> carry   # optional, instead of init: a policy that sees the state

`act` and `log_prob` must move the carry the same way for the same action (the target's
`log_prob` is scanned along a logged history for importance sampling). `categorical_policy`
builds both from a logits function.

Environments: anything with `reset(key, params)`, `reset_to_level(key, level, params)`,
`step_env(key, state, action, params)` (one transition, no automatic reset), `num_actions`,
and `level_of(state)` (a method, or `envs.po_sokoban.level_of` for PO-Sokoban), whose
observation noise is a function of the call's key only. Steps after an episode ends are
padding: the state is frozen, `valid` is False and the reward is 0.

Time indexing: `obs[t]` (t = 0..T) is the observation action `action[t]` was taken in;
`obs[t + 1]`, `reward[t]`, `terminated[t]`, `truncated[t]` belong to the transition of step t,
taken with `step_keys[t]` (observation noise) and `action_keys[t]` (the policy's own noise).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs import po_sokoban

LOG_PROB_TOL = 1e-5  # a log-probability above this is a probability above 1


class Policy(NamedTuple):
  """A policy on the observation history (see the module docstring)."""
  act: Callable[[jax.Array, Any, Any], tuple[jax.Array, jax.Array, Any]]
  log_prob: Callable[[Any, Any, jax.Array], tuple[jax.Array, Any]] | None = None
  init: Callable[[], Any] = tuple
  # [O] init_level(level) -> carry, used instead of `init` when given: a policy that sees the
  # true state (`agents.cfgps.solver`) tracks it from the level of the episode it acts in.
  init_level: Callable[[Any], Any] | None = None

  def initial_carry(self, level):
    """The carry before the first step of an episode on `level`."""
    return self.init() if self.init_level is None else self.init_level(level)


def categorical_policy(logits_fn: Callable[[Any, Any], tuple[jax.Array, Any]],
                       init: Callable[[], Any] = tuple) -> Policy:
  """`Policy` of a categorical over actions: `logits_fn(obs, carry) -> (logits[A], carry)`
  (the carry moves with the observation only)."""
  def act(key, obs, carry):
    logits, carry = logits_fn(obs, carry)
    action = jax.random.categorical(key, logits).astype(jnp.int32)
    return action, jax.nn.log_softmax(logits)[action], carry

  def log_prob(obs, carry, action):
    logits, carry = logits_fn(obs, carry)
    return jax.nn.log_softmax(logits)[action], carry

  return Policy(act, log_prob, init)


def uniform_policy(num_actions: int) -> Policy:
  """The uniformly random policy over `num_actions` actions (CF-GPS's behaviour policy)."""
  if not isinstance(num_actions, int) or num_actions < 1:
    raise ValueError(f"num_actions must be a positive integer; got {num_actions!r}")
  return categorical_policy(lambda obs, carry: (jnp.zeros((num_actions,)), carry))


class Episode(NamedTuple):
  """A logged episode (a batch: leading axis N on every field); see the module docstring."""
  level: Any              # the level U (the env's level pytree)
  reset_key: jax.Array    # key of the reset (the noise of obs[0])
  step_keys: jax.Array    # [T] keys of the steps (the noise of obs[t + 1])
  action_keys: jax.Array  # [T] keys the policy sampled a_t with
  obs: Any                # [T + 1, ...] observations
  action: jax.Array       # [T] int32
  log_prob: jax.Array     # [T] log mu(a_t | h_t) of the policy that acted
  reward: jax.Array       # [T] float32, 0 after the end
  valid: jax.Array        # [T] bool: step t belongs to the episode (taken before it ended)
  terminated: jax.Array   # [T] bool
  truncated: jax.Array    # [T] bool: the env's time limit (not the horizon cut)

  @property
  def horizon(self) -> int:
    return self.action.shape[-1]


def episode_return(episodes: Episode) -> jax.Array:
  """Undiscounted return `sum_t r_t` of each episode (CF-GPS's Sokoban return): `[N]`."""
  return jnp.sum(jnp.where(episodes.valid, episodes.reward, 0.0), axis=-1)


# ------------------------------------------------------------------------------- checks
def _check_env(env) -> None:
  for name in ("reset", "reset_to_level", "step_env", "num_actions"):
    if not hasattr(env, name):
      raise ValueError(f"env must have `{name}` for logging and counterfactual replay "
                       f"(see agents.cfgps.episodes); {type(env).__name__} has not")
  if not hasattr(env, "level_of") and not isinstance(env, po_sokoban.POSokoban):
    raise ValueError(f"env must have `level_of(state)`; {type(env).__name__} has not")


def level_of(env, state):
  """The level of an episode's first state (`env.level_of`, or PO-Sokoban's)."""
  if hasattr(env, "level_of"):
    return env.level_of(state)
  return po_sokoban.level_of(state)


def _check_policy(policy, name: str, need_log_prob: bool = False) -> None:
  if not isinstance(policy, Policy):
    raise ValueError(f"{name} must be an agents.cfgps.Policy(act, log_prob, init); got "
                     f"{type(policy).__name__}")
  if need_log_prob and policy.log_prob is None:
    raise ValueError(f"{name}.log_prob is None; it is needed to score logged actions")


def check_horizon(horizon, params) -> int:
  """The static number of steps T: `horizon`, or `params.max_steps`; refuses a horizon beyond
  the episode length `params.max_steps`."""
  max_steps = getattr(params, "max_steps", None)
  if max_steps is not None and not isinstance(max_steps, jax.core.Tracer):
    max_steps = int(max_steps)
  else:
    max_steps = None
  if horizon is None:
    if max_steps is None:
      raise ValueError("horizon must be given (params.max_steps is not a concrete integer)")
    return max_steps
  if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
    raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
  if max_steps is not None and horizon > max_steps:
    raise ValueError(f"horizon={horizon} is beyond the episode length params.max_steps="
                     f"{max_steps}")
  return int(horizon)


def _concrete(*xs) -> bool:
  return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


def check_log_probs(log_prob, valid, name: str, allow_neg_inf: bool = False) -> None:
  """Refuses log-probabilities that are NaN, above 0 (a probability above 1) or, unless
  `allow_neg_inf`, -inf (an action of probability 0 that was nevertheless taken), on valid
  steps; `name` names the policy in the error. Skipped under jit."""
  if not _concrete(log_prob, valid):
    return
  lp = np.asarray(log_prob, np.float64)
  v = np.broadcast_to(np.asarray(valid, bool), lp.shape)
  bad = v & (np.isnan(lp) | (lp > LOG_PROB_TOL) | (np.isposinf(lp)))
  if not allow_neg_inf:
    bad |= v & np.isneginf(lp)
  if bad.any():
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{name} returned an invalid log-probability log_prob{list(idx)} = "
                     f"{lp[idx]} (expected a finite value <= 0, the log of a probability of "
                     f"the action taken)")


def _check_actions(action, valid, num_actions: int, name: str) -> None:
  if not _concrete(action, valid):
    return
  a = np.asarray(action)
  bad = np.asarray(valid, bool) & ((a < 0) | (a >= num_actions))
  if bad.any():
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{name} returned action{list(idx)} = {a[idx]}, outside "
                     f"[0, {num_actions})")


def _check_scalar(x, name: str) -> None:
  if jnp.shape(x) != ():
    raise ValueError(f"{name} must return a scalar action and log-probability per step "
                     f"(vmap handles episodes); got shape {jnp.shape(x)}")


# ------------------------------------------------------------------------------- rollouts
def _freeze(done, old, new):
  return jax.tree.map(lambda a, b: jnp.where(done, a, b), old, new)


def _run(env, params, policy: Policy, level, reset_key, step_keys, action_keys,
         forced_actions=None, name: str = "policy"):
  """One episode on `level` with the given keys: under `policy` (`forced_actions` None), or
  with the actions forced and scored by `policy.log_prob` (or not scored, `policy` None)."""
  obs0, state0 = env.reset_to_level(reset_key, level, params)
  return _scan(env, params, policy, obs0, state0, level, reset_key, step_keys, action_keys,
               forced_actions, name)


def _scan(env, params, policy, obs0, state0, level, reset_key, step_keys, action_keys,
          forced_actions, name):
  carry0 = policy.initial_carry(level) if policy is not None else ()
  forced = (jnp.zeros(step_keys.shape[:1], jnp.int32) if forced_actions is None
            else forced_actions)

  def body(c, xs):
    state, obs, pcarry, done = c
    k_env, k_act, a_forced = xs
    if forced_actions is None:
      action, logp, pcarry = policy.act(k_act, obs, pcarry)
      _check_scalar(action, name)
      _check_scalar(logp, name)
    elif policy is not None:
      action = a_forced
      logp, pcarry = policy.log_prob(obs, pcarry, action)
      _check_scalar(logp, name)
    else:
      action, logp = a_forced, jnp.asarray(0.0, float)
    action = jnp.asarray(action, jnp.int32)
    obs_t, state_t, reward, term, trunc, _ = env.step_env(k_env, state, action, params)
    valid = ~done
    term = jnp.asarray(term, bool) & valid
    trunc = jnp.asarray(trunc, bool) & valid & ~term
    reward = jnp.where(valid, jnp.asarray(reward, jnp.float32), 0.0)
    state_t = _freeze(done, state, state_t)
    out = (obs_t, action, jnp.asarray(logp, float), reward, valid, term, trunc)
    return (state_t, obs_t, pcarry, done | term | trunc), out

  _, (obs, action, logp, reward, valid, term, trunc) = jax.lax.scan(
      body, (state0, obs0, carry0, jnp.bool_(False)), (step_keys, action_keys, forced))
  obs = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), obs0, obs)
  return Episode(level=level, reset_key=reset_key, step_keys=step_keys,
                 action_keys=action_keys, obs=obs, action=action, log_prob=logp, reward=reward,
                 valid=valid, terminated=term, truncated=trunc)


def _log_one(key, params, *, env, policy, horizon):
  k_reset, k_steps, k_actions = jax.random.split(key, 3)
  obs0, state0 = env.reset(k_reset, params)
  level = level_of(env, state0)
  return _scan(env, params, policy, obs0, state0, level, k_reset,
               jax.random.split(k_steps, horizon), jax.random.split(k_actions, horizon), None,
               "behaviour policy")


@functools.partial(jax.jit, static_argnames=("env", "policy", "num_episodes", "horizon"))
def _log_jit(key, params, *, env, policy, num_episodes, horizon):
  fn = functools.partial(_log_one, env=env, policy=policy, horizon=horizon)
  return jax.vmap(fn, in_axes=(0, None))(jax.random.split(key, num_episodes), params)


def log_episodes(key: jax.Array, env, params, policy: Policy, num_episodes: int,
                 horizon: int | None = None) -> Episode:
  """`num_episodes` episodes of `policy` (the behaviour policy mu) from `env.reset`: `[N]`.

  Each episode draws its level from the env's level source (`params`) with its reset key and
  logs the level, keys, observations `[N, T + 1, ...]`, actions, behaviour log-probabilities
  and rewards `[N, T]`. `horizon` (T, default `params.max_steps`) may cut episodes shorter
  than the env's time limit, never longer. One jit (the env and the policy are static).
  """
  _check_env(env)
  _check_policy(policy, "policy")
  if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes < 1:
    raise ValueError(f"num_episodes must be a positive integer; got {num_episodes!r}")
  horizon = check_horizon(horizon, params)
  eps = _log_jit(key, params, env=env, policy=policy, num_episodes=num_episodes,
                 horizon=horizon)
  check_log_probs(eps.log_prob, eps.valid, "behaviour policy")
  _check_actions(eps.action, eps.valid, env.num_actions, "behaviour policy")
  return eps


def _log_levels(key, params, levels, env, policy, horizon, name):
  """One episode per level of `levels`, vmapped (the body of the two jitted loggers below)."""
  def one(k, level):
    k_reset, k_steps, k_actions = jax.random.split(k, 3)
    return _run(env, params, policy, level, k_reset, jax.random.split(k_steps, horizon),
                jax.random.split(k_actions, horizon), None, name)
  n = jax.tree.leaves(levels)[0].shape[0]
  return jax.vmap(one)(jax.random.split(key, n), levels)


@functools.partial(jax.jit, static_argnames=("env", "policy", "horizon"))
def _log_levels_jit(key, params, levels, *, env, policy, horizon):
  return _log_levels(key, params, levels, env, policy, horizon, "behaviour policy")


def log_on_levels(key: jax.Array, env, params, policy: Policy, levels,
                  horizon: int | None = None) -> Episode:
  """One episode of `policy` on each of the given levels `[N]` (`env.reset_to_level`, fresh
  keys from `key`): `[N]`, as `log_episodes` logs them."""
  _check_env(env)
  _check_policy(policy, "policy")
  horizon = check_horizon(horizon, params)
  eps = _log_levels_jit(key, params, levels, env=env, policy=policy, horizon=horizon)
  check_log_probs(eps.log_prob, eps.valid, "behaviour policy")
  return eps


@functools.partial(jax.jit, static_argnames=("env", "policy", "forced"))
def _replay_jit(params, episodes, action_keys, level, *, env, policy, forced):
  def one(ep, ak, lv):
    return _run(env, params, policy, lv, ep.reset_key, ep.step_keys, ak,
                ep.action if forced else None, "policy")
  return jax.vmap(one)(episodes, action_keys, level)


def counterfactual_rollout(env, params, episodes: Episode, policy: Policy,
                           key: jax.Array | None = None, level=None) -> Episode:
  """The logged scenarios replayed under `policy` (CF-GPS Alg. 1's counterfactual rollout).

  Every episode restarts on its level (`level`: `[N]` levels to use instead, e.g. samples of
  a posterior p(U | h_t)) with its logged reset and step keys, so the observation noise is the
  logged one at every step, while `policy` chooses the actions. The policy's own noise is the
  logged action keys (`key` None: then the behaviour policy reproduces the logged episode
  exactly) or fresh keys from `key`. Returns the counterfactual episodes `[N]` (their
  `log_prob` is the new policy's); `episode_return` gives the counterfactual returns.
  """
  _check_env(env)
  _check_policy(policy, "policy")
  _check_episodes_shape(episodes)
  action_keys = _action_keys(episodes, key)
  level = episodes.level if level is None else level
  eps = _replay_jit(params, episodes, action_keys, level, env=env, policy=policy, forced=False)
  check_log_probs(eps.log_prob, eps.valid, "policy")
  _check_actions(eps.action, eps.valid, env.num_actions, "policy")
  return eps


def _action_keys(episodes: Episode, key):
  if key is None:
    return episodes.action_keys
  n, t = episodes.action.shape
  return jax.random.split(key, n * t).reshape((n, t) + episodes.action_keys.shape[2:])


def _check_episodes_shape(episodes) -> None:
  if not isinstance(episodes, Episode):
    raise ValueError(f"episodes must be an agents.cfgps.Episode; got {type(episodes).__name__}")
  if episodes.action.ndim != 2:
    raise ValueError(f"episodes must be a batch: action of shape [N, T]; got "
                     f"{episodes.action.shape} (add a leading axis for one episode)")


def replay_actions(env, params, episodes: Episode) -> Episode:
  """The logged actions replayed on the recorded levels with the logged keys: `[N]` episodes
  whose observations, rewards and flags are those the recorded level implies (`log_prob` 0)."""
  _check_env(env)
  _check_episodes_shape(episodes)
  return _replay_jit(params, episodes, episodes.action_keys, episodes.level, env=env,
                     policy=None, forced=True)


def check_episodes(env, params, episodes: Episode, name: str = "episodes") -> None:
  """Refuses logged episodes inconsistent with their recorded level: replays the logged
  actions on `episodes.level` with the logged keys and compares the observations (the first,
  and every one after a valid step), rewards and termination flags. Skipped under jit."""
  if not _concrete(episodes):
    return
  rep = replay_actions(env, params, episodes)
  n, t = episodes.action.shape
  obs_valid = np.concatenate([np.ones((n, 1), bool), np.asarray(episodes.valid)], axis=1)
  checks = []
  for a, b in zip(jax.tree.leaves(episodes.obs), jax.tree.leaves(rep.obs)):
    a, b = np.asarray(a), np.asarray(b)
    differ = (a != b).reshape(n, t + 1, -1).any(-1) & obs_valid
    checks.append(("observation obs", differ))
  valid = np.asarray(episodes.valid)
  checks.append(("reward", (np.asarray(episodes.reward) != np.asarray(rep.reward)) & valid))
  checks.append(("terminated", (np.asarray(episodes.terminated)
                                != np.asarray(rep.terminated)) & valid))
  checks.append(("valid", np.asarray(episodes.valid) != np.asarray(rep.valid)))
  for what, differ in checks:
    if differ.any():
      i, step = (int(x) for x in np.argwhere(differ)[0])
      raise ValueError(
          f"{name}[{i}] is inconsistent with its recorded level: its {what}[{step}] differs "
          f"from a replay of its logged actions on {name}.level with its logged keys (wrong "
          f"level, tampered observations, or keys not those of the episode)")


def history(episodes: Episode, t: int) -> Episode:
  """h_t, the first `t` steps of each episode (0 <= t <= T): observations o_0..o_{t-1},
  actions, log-probabilities and rewards of steps 0..t-1; later entries are zeroed and not
  `valid` (shapes stay static). t = 0 is the empty history (the prior's)."""
  _check_episodes_shape(episodes)
  horizon = episodes.horizon
  if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= horizon:
    raise ValueError(f"t={t!r} is beyond the episode length: expected an integer in "
                     f"[0, {horizon}] (the logged horizon T)")
  step_in = jnp.arange(horizon) < t
  obs_in = jnp.arange(horizon + 1) < t

  def mask(x, m):
    return jnp.where(m.reshape((1, -1) + (1,) * (x.ndim - 2)), x, jnp.zeros_like(x))

  return episodes._replace(
      obs=jax.tree.map(lambda x: mask(x, obs_in), episodes.obs),
      action=mask(episodes.action, step_in), log_prob=mask(episodes.log_prob, step_in),
      reward=mask(episodes.reward, step_in), valid=episodes.valid & step_in,
      terminated=episodes.terminated & step_in, truncated=episodes.truncated & step_in)


# ------------------------------------------------------------------------------- parametric
# A policy built from traced parameters, `make_policy(theta) -> Policy`, rolled out with theta
# an argument of the jitted function: one compilation serves every value of theta (a learned
# policy's parameters changing between iterations). `make_policy` is static: build it once and
# reuse the same object, since jit caches on its identity.
@functools.partial(jax.jit, static_argnames=("env", "make_policy", "horizon"))
def _log_levels_theta_jit(key, params, levels, theta, *, env, make_policy, horizon):
  return _log_levels(key, params, levels, env, make_policy(theta), horizon, "policy")


def log_on_levels_theta(key: jax.Array, env, params, make_policy: Callable[[Any], Policy],
                        theta, levels, horizon: int | None = None) -> Episode:
  """`log_on_levels` for the policy `make_policy(theta)`, theta traced (see above)."""
  _check_env(env)
  if not callable(make_policy):
    raise ValueError(f"make_policy must be a callable theta -> Policy; got "
                     f"{type(make_policy).__name__}")
  horizon = check_horizon(horizon, params)
  eps = _log_levels_theta_jit(key, params, levels, theta, env=env, make_policy=make_policy,
                              horizon=horizon)
  check_log_probs(eps.log_prob, eps.valid, "policy")
  return eps


@functools.partial(jax.jit, static_argnames=("env", "make_policy"))
def _replay_theta_jit(params, episodes, action_keys, level, theta, *, env, make_policy):
  policy = make_policy(theta)

  def one(ep, ak, lv):
    return _run(env, params, policy, lv, ep.reset_key, ep.step_keys, ak, None, "policy")
  return jax.vmap(one)(episodes, action_keys, level)


def counterfactual_rollout_theta(env, params, episodes: Episode,
                                 make_policy: Callable[[Any], Policy], theta,
                                 key: jax.Array | None = None, level=None) -> Episode:
  """`counterfactual_rollout` under the policy `make_policy(theta)`, theta traced (see above):
  the same logged levels (or `level`) and noise keys, the same policy-noise keys rule."""
  _check_env(env)
  if not callable(make_policy):
    raise ValueError(f"make_policy must be a callable theta -> Policy; got "
                     f"{type(make_policy).__name__}")
  _check_episodes_shape(episodes)
  action_keys = _action_keys(episodes, key)
  level = episodes.level if level is None else level
  eps = _replay_theta_jit(params, episodes, action_keys, level, theta, env=env,
                          make_policy=make_policy)
  check_log_probs(eps.log_prob, eps.valid, "policy")
  _check_actions(eps.action, eps.valid, env.num_actions, "policy")
  return eps
