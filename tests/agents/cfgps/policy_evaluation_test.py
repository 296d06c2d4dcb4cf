"""Tests of CF-GPS's logged episodes, counterfactual replay and policy-evaluation estimators
(Buesing et al. 2019, Sec. 2-3, Alg. 1): exact replay on PO-Sokoban, CF-PE equal to a direct
rollout, IS unbiased on an enumerable POMDP (exact values by enumeration), and bad input."""
import functools
import itertools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import cfgps
from envs import po_sokoban, sokoban
from envs import sokoban_levels as sl

# ============================================================================ a tiny POMDP
# Hidden state s in {0, 1}, s_0 ~ Bernoulli(P1) (the level U); each observation shows s,
# flipped with probability FLIP by noise keyed by the call's key; action 1 toggles s, action 0
# keeps it; reward (t + 1) * [a_t == s_t]; horizon 3.
P1, FLIP, T_TINY = 0.3, 0.25, 3


@flax.struct.dataclass
class TinyParams:
  max_steps: int = T_TINY


@flax.struct.dataclass
class TinyState:
  s: jax.Array
  t: jax.Array


def emit(s, flip):
  return jnp.where(flip, 1 - s, s).astype(jnp.int32)


def transition(s, a):
  return jnp.where(a == 1, 1 - s, s).astype(jnp.int32)


def reward_of(s, a, t):
  return jnp.asarray((t + 1) * (a == s) + 2 * s, jnp.float32)


class TinyPOMDP:
  """The tiny POMDP with the logging interface of agents.cfgps.episodes."""
  num_actions = 2

  def _flip(self, key):
    return jax.random.uniform(jax.random.split(key)[1]) < FLIP

  def level_of(self, state):
    return state.s

  def reset_to_level(self, key, level, params):
    state = TinyState(jnp.asarray(level, jnp.int32), jnp.int32(0))
    return emit(state.s, self._flip(key)), state

  def reset(self, key, params):
    level = (jax.random.uniform(jax.random.split(key)[0]) < P1).astype(jnp.int32)
    return self.reset_to_level(key, level, params)

  def step_env(self, key, state, action, params):
    r = reward_of(state.s, action, state.t)
    new = TinyState(transition(state.s, action), state.t + 1)
    trunc = new.t >= params.max_steps
    return emit(new.s, self._flip(key)), new, r, jnp.bool_(False), trunc, {}


# mu: depends on the last observation only; pi: recurrent, its carry a running score of the
# observations that the toggling action flips.
def _mu_logits(obs, carry):
  p1 = 0.35 + 0.3 * obs
  return jnp.log(jnp.stack([1 - p1, p1])), carry


def _pi_probs(obs, c):
  c = c + (2.0 * obs - 1.0)
  p1 = jax.nn.sigmoid(1.3 * c - 0.2)
  return jnp.stack([1 - p1, p1]), c


def _pi_act(key, obs, c):
  probs, c = _pi_probs(obs, c)
  a = jax.random.bernoulli(key, probs[1]).astype(jnp.int32)
  return a, jnp.log(probs[a]), jnp.where(a == 1, -c, c)


def _pi_log_prob(obs, c, a):
  probs, c = _pi_probs(obs, c)
  return jnp.log(probs[a]), jnp.where(a == 1, -c, c)


MU = cfgps.categorical_policy(_mu_logits)
PI = cfgps.Policy(_pi_act, _pi_log_prob, lambda: jnp.asarray(0.0, float))  # float64 under x64
TINY = TinyPOMDP()


def _paths():
  """Every (s0, flips of o_0..o_{T-1}, actions) with its probability under `policy`."""
  return itertools.product((0, 1), itertools.product((0, 1), repeat=T_TINY),
                           itertools.product((0, 1), repeat=T_TINY))


def _path(policy, s0, flips, actions):
  """Probability of the path's noise and actions under `policy`, its observations, return."""
  prob = P1 if s0 else 1 - P1
  s, carry, ret, obs = s0, policy.init(), 0.0, []
  for t, (f, a) in enumerate(zip(flips, actions)):
    prob *= FLIP if f else 1 - FLIP
    o = int(emit(s, bool(f)))
    obs.append(o)
    logp, carry = policy.log_prob(jnp.int32(o), carry, jnp.int32(a))
    prob *= float(np.exp(np.float64(logp)))
    ret += float(reward_of(s, a, t))
    s = int(transition(s, a))
  return prob, obs, ret


def _exact_value(policy, s0=None):
  """J(policy) (given s_0 = `s0` if set) by enumeration."""
  return _exact_value_cached(policy, s0, bool(jax.config.jax_enable_x64))


@functools.lru_cache(maxsize=None)
def _exact_value_cached(policy, s0, x64):
  del x64  # part of the cache key only: float64 policies under x64
  total, mass = 0.0, 0.0
  for s, flips, actions in _paths():
    if s0 is not None and s != s0:
      continue
    prob, _, ret = _path(policy, s, flips, actions)
    total += prob * ret
    mass += prob
  return total / mass


@functools.lru_cache(maxsize=None)
def _tiny_episodes(n=10000):
  return cfgps.log_episodes(jax.random.PRNGKey(1), TINY, TinyParams(), MU, n)


def test_is_estimator_exactly_unbiased_by_enumeration(x64):
  """E_mu[w G] over every path (probabilities under mu), with the weights from the estimator's
  own code on episodes built from the paths, equals J(pi) by enumeration to float64 precision."""
  j_pi = _exact_value(PI)
  rows = []
  for s0, flips, actions in _paths():
    p_mu, obs, ret = _path(MU, s0, flips, actions)
    logp = [float(MU.log_prob(jnp.int32(o), (), jnp.int32(a))[0]) for o, a in zip(obs, actions)]
    s_t = [s0]
    for a in actions:
      s_t.append(int(transition(s_t[-1], a)))
    rewards = [float(reward_of(s, a, t)) for t, (s, a) in enumerate(zip(s_t, actions))]
    rows.append((p_mu, obs + [0], list(actions), logp, rewards, s0))
  n = len(rows)
  key = jax.random.PRNGKey(0)
  episodes = cfgps.Episode(
      level=jnp.asarray([r[5] for r in rows]), reset_key=jnp.tile(key, (n, 1)),
      step_keys=jnp.tile(key, (n, T_TINY, 1)), action_keys=jnp.tile(key, (n, T_TINY, 1)),
      obs=jnp.asarray([r[1] for r in rows]), action=jnp.asarray([r[2] for r in rows]),
      log_prob=jnp.asarray([r[3] for r in rows]), reward=jnp.asarray([r[4] for r in rows]),
      valid=jnp.ones((n, T_TINY), bool), terminated=jnp.zeros((n, T_TINY), bool),
      truncated=jnp.zeros((n, T_TINY), bool))
  est = cfgps.importance_sampling(None, TINY, TinyParams(), episodes, PI)
  p_mu = np.asarray([r[0] for r in rows])
  assert n == 128 and abs(p_mu.sum() - 1.0) < 1e-12
  expectation = float(np.sum(p_mu * np.asarray(est.per_episode, np.float64)))
  assert 6.0 < j_pi < 6.5  # J(pi) = 6.2814 (J(mu) = 5.75: below)
  assert abs(expectation - j_pi) < 1e-12 * j_pi, (expectation, j_pi)
  assert abs(_exact_value(MU) - j_pi) > 0.3


def test_estimators_within_4_standard_errors_of_exact_value():
  """10000 episodes of mu on the tiny POMDP: IS, WIS, CF-PE (exact level) and MB-PE (true
  prior) of pi all lie within 4 standard errors of J(pi) by enumeration; IS's standard error
  exceeds CF-PE's (the weights' variance)."""
  j_pi = _exact_value(PI)
  eps = _tiny_episodes()
  key = jax.random.PRNGKey(2)
  out = {}
  for name in ("is", "wis", "cf", "mb"):
    est = cfgps.evaluate(name, key, TINY, TinyParams(), eps, PI)
    out[name] = (float(est.value), float(est.stderr))
    assert abs(est.value - j_pi) < 4 * est.stderr, (name, out[name], j_pi)
    assert 0 < est.stderr < 0.1
  assert out["is"][1] > out["cf"][1]
  print("J(pi) =", j_pi, out)


def test_mb_pe_with_a_wrong_prior_is_biased_cf_pe_is_not():
  """MB-PE with the prior fixed at s0 = 1 (wrong: the truth is P(s0 = 1) = 0.3) estimates
  J(pi | s0 = 1), far from J(pi); CF-PE with the exact level stays within 4 SE of J(pi)."""
  j_pi, j_given_1 = _exact_value(PI), _exact_value(PI, s0=1)
  eps = _tiny_episodes()
  key = jax.random.PRNGKey(3)
  mb = cfgps.model_based_pe(key, TINY, TinyParams(), eps, PI, prior=lambda k: jnp.int32(1))
  cf = cfgps.counterfactual_pe(key, TINY, TinyParams(), eps, PI)
  assert abs(mb.value - j_given_1) < 4 * mb.stderr
  assert abs(mb.value - j_pi) > 20 * mb.stderr
  assert abs(cf.value - j_pi) < 4 * cf.stderr
  print(f"J(pi) = {j_pi:.4f}, J(pi | s0=1) = {j_given_1:.4f}; MB-PE(s0=1 prior) "
        f"{float(mb.value):.4f} +- {float(mb.stderr):.4f}; CF-PE {float(cf.value):.4f} +- "
        f"{float(cf.stderr):.4f}")


def _bayes_posterior(key, hist, t):
  """The exact p(s_0 | h_t) of the tiny POMDP for t <= 1 (o_0 alone informs s_0 then)."""
  like1 = jnp.where(hist.obs[0] == 1, 1 - FLIP, FLIP)  # p(o_0 | s_0 = 1)
  post1 = P1 * like1 / (P1 * like1 + (1 - P1) * (1 - like1))
  post1 = jnp.where(t >= 1, post1, P1)  # h_0 is empty: the prior
  return (jax.random.uniform(key) < post1).astype(jnp.int32)


def test_history_and_cf_pe_with_an_inferred_level():
  """`history(., t)` keeps the first t steps only; CF-PE with levels sampled from the exact
  posterior p(s_0 | h_t), t = 0 (the prior) and t = 1, is within 4 SE of J(pi), and with the
  identity posterior `h.level` it equals CF-PE with the exact level."""
  eps = _tiny_episodes()
  h = cfgps.history(eps, 1)
  assert np.all(np.asarray(h.obs[:, 1:]) == 0) and np.all(np.asarray(h.valid[:, 1:]) == 0)
  np.testing.assert_array_equal(np.asarray(h.obs[:, 0]), np.asarray(eps.obs[:, 0]))
  assert np.all(np.asarray(cfgps.history(eps, 0).valid) == 0)
  j_pi, key = _exact_value(PI), jax.random.PRNGKey(4)
  for t in (0, 1):
    est = cfgps.counterfactual_pe(key, TINY, TinyParams(), eps, PI, posterior=_bayes_posterior,
                                  t=t)
    assert abs(est.value - j_pi) < 4 * est.stderr, (t, float(est.value), float(est.stderr))
  exact = cfgps.counterfactual_pe(key, TINY, TinyParams(), eps, PI)
  ident = cfgps.counterfactual_pe(key, TINY, TinyParams(), eps, PI,
                                  posterior=lambda k, hist, t: hist.level)
  np.testing.assert_array_equal(np.asarray(exact.per_episode), np.asarray(ident.per_episode))


def test_on_policy_weights_are_one():
  """With target = behaviour the IS weights are exactly 1 and IS = WIS = the mean return."""
  eps = _tiny_episodes()
  w = cfgps.importance_weights(eps, MU)
  assert np.all(np.asarray(w) == 1.0)
  g = np.asarray(cfgps.episode_return(eps))
  for name in ("is", "wis"):
    est = cfgps.evaluate(name, None, TINY, TinyParams(), eps, MU)
    np.testing.assert_allclose(float(est.value), g.mean(), rtol=1e-6)
    assert float(est.ess) == pytest.approx(len(g))


# ============================================================================ PO-Sokoban
LEVEL = """
#######
#@$.  #
#  $. #
#     #
#     #
#     #
#######
"""
NOOP, UP, DOWN, LEFT, RIGHT = range(5)
HORIZON = 12


def _obs_logits(obs, carry):
  """A recurrent policy: favours RIGHT more after each step that shows the player's tile."""
  seen = carry + jnp.any(obs[..., sokoban.PLAYER] > 0).astype(jnp.float32)
  return jnp.array([0.0, 0.3, 0.0, 0.2, 0.5]) + jnp.array([0, 0, 0, 0, 1.0]) * seen, seen


BEHAVIOUR = cfgps.categorical_policy(_obs_logits, init=lambda: jnp.float32(0.0))
# The target reacts to the observation (the boxes it sees), so the noise matters to its return.
TARGET = cfgps.categorical_policy(
    lambda obs, c: (jnp.array([0.0, 1.0, 1.0, -0.5, 1.5])
                    + jnp.array([0.0, 0.0, 1.0, 0.0, -1.0]) * obs[..., sokoban.BOX].sum(), c))

# A level solved in 3 moves (RIGHT pushes box 1 on, LEFT, DOWN pushes box 2 on); the script
# goes on after the end and would push box 2 off again (-1) were the episode not over.
QUICK = """
#######
#@$.  #
#$    #
#.    #
#     #
#     #
#######
"""
SCRIPT = jnp.array([RIGHT, LEFT, DOWN, UP, DOWN, DOWN] + [NOOP] * (HORIZON - 6), jnp.int32)


def _script_act(key, obs, t):
  return SCRIPT[t], jnp.float32(0.0), t + 1


SCRIPTED = cfgps.Policy(_script_act, lambda obs, t, a: (jnp.log(a == SCRIPT[t]), t + 1),
                        lambda: jnp.int32(0))


@functools.lru_cache(maxsize=None)
def _env():
  return po_sokoban.POSokoban(7, 7, num_boxes=2)


@functools.lru_cache(maxsize=None)
def _hand():
  """7x7 PO-Sokoban with 2 boxes on LEVEL (rewards come quickly), 12-step episodes; the bank
  repeats LEVEL 64 times so that it has `_bank`'s shapes and shares its compiled programs."""
  level = sl.parse_level(LEVEL)
  return _env(), _env().make_params(jax.tree.map(lambda x: np.repeat(x[None], 64, 0), level),
                                    max_steps=HORIZON)


@functools.lru_cache(maxsize=None)
def _bank():
  """7x7 PO-Sokoban with 2 boxes on 64 held-out App. D.3 levels, 12-step episodes."""
  return _env(), _env().eval_params(64, max_steps=HORIZON)


@functools.lru_cache(maxsize=None)
def _logged(which):
  env, params = _hand() if which == "hand" else _bank()
  return cfgps.log_episodes(jax.random.PRNGKey(7), env, params, BEHAVIOUR, 8)


@pytest.mark.parametrize("which", ["hand", "bank"])
def test_counterfactual_replay_of_behaviour_reproduces_the_episode(which):
  env, params = _hand() if which == "hand" else _bank()
  eps = _logged(which)
  rep = cfgps.counterfactual_rollout(env, params, eps, BEHAVIOUR)
  for field in ("obs", "action", "log_prob", "reward", "valid", "terminated", "truncated"):
    np.testing.assert_array_equal(np.asarray(getattr(rep, field)),
                                  np.asarray(getattr(eps, field)), err_msg=field)
  # the episodes are not trivial: noisy observations, varied actions and (hand) rewards
  codes = np.asarray(eps.obs).argmax(-1)
  assert (codes == sokoban.FLOOR).mean() > 0.85 and (codes != sokoban.FLOOR).any()
  assert len(np.unique(np.asarray(eps.action))) == 5
  if which == "hand":
    assert np.abs(np.asarray(eps.reward)).sum() > 0
  else:  # 8 episodes on different bank levels
    assert len({np.asarray(w).tobytes() for w in eps.level.boxes}) > 4


@functools.lru_cache(maxsize=None)
def _jitted(env, policy):
  """The env's public `step` (automatic reset included) and the policy's `act`, jitted."""
  return jax.jit(env.step), jax.jit(policy.act)


def _direct_return(env, params, level, reset_key, step_keys, action_keys, policy):
  """pi on `level` with the given keys through the env's public reset_to_level / step (with
  automatic reset: stop at the end), one Python step at a time."""
  obs, state = env.reset_to_level(reset_key, level, params)
  step, act = _jitted(env, policy)
  carry, total = policy.init(), 0.0
  for k_env, k_act in zip(step_keys, action_keys):
    action, _, carry = act(k_act, obs, carry)
    obs, state, reward, term, trunc, _ = step(k_env, state, action, params)
    total += float(reward)
    if bool(term) or bool(trunc):
      break
  return total


@pytest.mark.parametrize("which", ["hand", "bank"])
def test_cf_pe_per_episode_equals_direct_rollout(which):
  """CF-PE with the exact level: each episode's value is pi's return on the logged level with
  the logged noise keys, as a direct step-by-step rollout with the same keys computes it."""
  env, params = _hand() if which == "hand" else _bank()
  eps = _logged(which)
  key = jax.random.PRNGKey(11)
  est = cfgps.evaluate("cf", key, env, params, eps, TARGET)
  n, t = eps.action.shape
  action_keys = jax.random.split(jax.random.split(key)[1], n * t).reshape(n, t, -1)
  direct = [_direct_return(env, params, jax.tree.map(lambda x: x[i], eps.level),
                           eps.reset_key[i], eps.step_keys[i], action_keys[i], TARGET)
            for i in range(n)]
  np.testing.assert_array_equal(np.asarray(est.per_episode), np.asarray(direct, np.float32))
  if which == "hand":
    assert len(set(direct)) > 1 and max(direct) > 0


def test_episode_that_ends_early_is_masked():
  """On QUICK the scripted policy solves at step 2 (rewards 1, 0, 1 + 10); the later steps
  are padding (not valid, reward 0, though the script would push a box off), and a direct
  rollout through the env's public step, the replay and the logged episode agree."""
  env = _env()
  level = sl.parse_level(QUICK)
  params = env.make_params(jax.tree.map(lambda x: np.repeat(x[None], 64, 0), level),
                           max_steps=HORIZON)
  eps = cfgps.log_episodes(jax.random.PRNGKey(3), env, params, SCRIPTED, 2)
  np.testing.assert_array_equal(np.asarray(eps.reward[0]), [1, 0, 11] + [0] * (HORIZON - 3))
  np.testing.assert_array_equal(np.asarray(eps.valid[0]), [1, 1, 1] + [0] * (HORIZON - 3))
  np.testing.assert_array_equal(np.asarray(eps.terminated[0]), [0, 0, 1] + [0] * (HORIZON - 3))
  np.testing.assert_array_equal(np.asarray(cfgps.episode_return(eps)), [12.0, 12.0])
  rep = cfgps.counterfactual_rollout(env, params, eps, SCRIPTED)
  np.testing.assert_array_equal(np.asarray(rep.obs), np.asarray(eps.obs))
  cfgps.check_episodes(env, params, eps)
  direct = _direct_return(env, params, jax.tree.map(lambda x: x[0], eps.level), eps.reset_key[0],
                          eps.step_keys[0], eps.action_keys[0], SCRIPTED)
  assert direct == 12.0
  w = cfgps.importance_weights(eps, SCRIPTED)  # on-policy, -inf never reached on valid steps
  np.testing.assert_array_equal(np.asarray(w), [1.0, 1.0])


def test_same_noise_under_a_new_policy():
  """A counterfactual rollout hides exactly the tiles the logged step keys hide."""
  env, params = _bank()
  eps = _logged("bank")
  cf = cfgps.counterfactual_rollout(env, params, eps, TARGET, key=jax.random.PRNGKey(5))
  assert (np.asarray(cf.action) != np.asarray(eps.action)).mean() > 0.5
  masks = jax.vmap(jax.vmap(lambda k: env.noise_mask(jax.random.split(k)[1], params)))(
      eps.step_keys)
  codes = np.asarray(cf.obs)[:, 1:].argmax(-1)
  assert np.all(codes[np.asarray(masks)] == sokoban.FLOOR)


# ============================================================================ bad input
def test_bad_input_is_refused():
  env, params = _bank()
  eps = _logged("bank")
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"horizon=13 is beyond the episode length"):
    cfgps.log_episodes(key, env, params, BEHAVIOUR, 2, horizon=13)
  with pytest.raises(ValueError, match=r"t=13 is beyond the episode length"):
    cfgps.evaluate("cf", key, env, params, eps, TARGET, t=13)
  with pytest.raises(ValueError, match=r"t=-1"):
    cfgps.history(eps, -1)
  with pytest.raises(ValueError, match="num_episodes"):
    cfgps.log_episodes(key, env, params, BEHAVIOUR, 0)
  with pytest.raises(ValueError, match="estimator name"):
    cfgps.evaluate("dr", key, env, params, eps, TARGET)


def test_inconsistent_episode_is_refused():
  """A logged episode whose level is not the one it was played on, or whose observation was
  altered, is refused by check_episodes and by CF-PE, naming the episode and the step."""
  env, params = _bank()
  eps = _logged("bank")
  cfgps.check_episodes(env, params, eps)  # the logged episodes pass
  swapped = eps._replace(level=jax.tree.map(lambda x: jnp.roll(x, 1, axis=0), eps.level))
  with pytest.raises(ValueError, match=r"episodes\[0\] is inconsistent with its recorded level"):
    cfgps.check_episodes(env, params, swapped)
  with pytest.raises(ValueError, match=r"inconsistent with its recorded level"):
    cfgps.evaluate("cf", jax.random.PRNGKey(0), env, params, swapped, TARGET)
  obs = np.asarray(eps.obs).copy()
  obs[3, 5] = jax.nn.one_hot(np.full(obs.shape[2:4], sokoban.WALL), obs.shape[-1])
  with pytest.raises(ValueError, match=r"episodes\[3\].*observation obs\[5\]"):
    cfgps.check_episodes(env, params, eps._replace(obs=jnp.asarray(obs)))


def test_invalid_log_probabilities_are_refused():
  """Policies returning log-probabilities above 0 or NaN, or actions out of range, are
  refused by name (checked on the tiny POMDP: the checks do not depend on the env)."""
  eps = _tiny_episodes()
  env, params, key = TINY, TinyParams(), jax.random.PRNGKey(0)
  above_one = cfgps.Policy(lambda k, o, c: (jnp.int32(1), jnp.float32(0.5), c),
                           lambda o, c, a: (jnp.float32(0.5), c))
  nan = cfgps.Policy(lambda k, o, c: (jnp.int32(1), jnp.float32(jnp.nan), c),
                     lambda o, c, a: (jnp.float32(jnp.nan), c))
  out_of_range = cfgps.Policy(lambda k, o, c: (jnp.int32(7), jnp.float32(0.0), c))
  with pytest.raises(ValueError, match=r"behaviour policy returned an invalid log-probability "
                     r"log_prob\[0, 0\] = 0.5"):
    cfgps.log_episodes(key, env, params, above_one, 2)
  with pytest.raises(ValueError, match=r"behaviour policy returned an invalid log-probability"):
    cfgps.log_episodes(key, env, params, nan, 2)
  with pytest.raises(ValueError, match=r"target policy returned an invalid log-probability"):
    cfgps.evaluate("is", key, env, params, eps, above_one)
  with pytest.raises(ValueError, match=r"target policy returned an invalid log-probability"):
    cfgps.evaluate("wis", key, env, params, eps, nan)
  with pytest.raises(ValueError, match=r"behaviour policy returned action\[0, 0\] = 7"):
    cfgps.log_episodes(key, env, params, out_of_range, 2)
  with pytest.raises(ValueError, match=r"target.log_prob is None"):
    cfgps.evaluate("is", key, env, params, eps, out_of_range)
  bad_eps = eps._replace(log_prob=eps.log_prob.at[4, 1].set(0.3))
  with pytest.raises(ValueError, match=r"behaviour policy \(episodes.log_prob\) returned an "
                     r"invalid log-probability log_prob\[4, 1\]"):
    cfgps.evaluate("is", key, env, params, bad_eps, PI)
