"""Tests of the CF-GPS policy-search experiment's pieces (agents.cfgps.ps_experiment): what
each method's scenario reads of the real episode (MB-PS nothing, the GPS-like baseline the
first observation only, CF-GPS all of it), A2C's frame budget, the scenario-model cache and
its refusal of a corrupted file, the parametric rollouts against the plain ones, and bad
configs refused by name."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import a2c, supervised
from agents.cfgps import episodes as ep_lib
from agents.cfgps import ps_experiment as P
from agents.cfgps import scenario as sc
from agents.cfgps import search as S
from envs import po_sokoban, sokoban

H = W = 7
K = 2
T = 12
SMALL = sc.ScenarioConfig(channels=4, layers=1, cond_layers=1, t_set=(0, 1, T),
                          train=supervised.TrainConfig(learning_rate=1e-3, batch_size=4,
                                                       steps_per_chunk=2))


def _setup(n=6):
  env = po_sokoban.POSokoban(H, W, K)
  bank = sokoban.generated_levels(H, W, K, 16, 1)
  params = env.make_params(bank, max_steps=T)
  net = sc.make_net(SMALL)
  sp = net.init(jax.random.PRNGKey(0), jnp.zeros((1, H - 2, W - 2, sc.NUM_CLASSES)),
                jnp.zeros((1, H - 2, W - 2, sc.NUM_FEATURES)))
  eps_a = ep_lib.log_on_levels(jax.random.PRNGKey(1), env, params, ep_lib.uniform_policy(5),
                               bank[:n], T)
  eps_b = ep_lib.log_on_levels(jax.random.PRNGKey(2), env, params, ep_lib.uniform_policy(5),
                               bank[n:2 * n], T)
  cfg = P.PSConfig(height=H, width=W, num_boxes=K, horizon=T, scenario=SMALL, gps_t=1,
                   posterior_tries=2)
  return env, params, sp, eps_a, eps_b, cfg


def _classes(levels):
  return np.asarray(sc.level_to_classes(levels))


def test_mbps_ignores_the_history():
  """MB-PS: two batches of different real episodes (other levels, actions, observations)
  give the same scenario levels and the same fresh noise keys under one key; the keys are not
  the logged ones."""
  env, params, sp, eps_a, eps_b, cfg = _setup()
  key = jax.random.PRNGKey(7)
  la, ra, _ = P.infer_scenarios("mbps", key, cfg, sp, env, params, eps_a)
  lb, rb, _ = P.infer_scenarios("mbps", key, cfg, sp, env, params, eps_b)
  np.testing.assert_array_equal(_classes(la), _classes(lb))
  np.testing.assert_array_equal(np.asarray(ra.step_keys), np.asarray(rb.step_keys))
  np.testing.assert_array_equal(np.asarray(ra.reset_key), np.asarray(rb.reset_key))
  assert not np.array_equal(np.asarray(ra.step_keys), np.asarray(eps_a.step_keys))


def test_gps_reads_only_the_first_observation():
  """The GPS-like scenario (t = 1): other real episodes on the same levels with the same
  first observation (the same level and noise keys, other actions: every later observation
  changes) give exactly the same log-likelihood of every level and identical sampled levels;
  at t = T (CF-GPS) the same change moves the log-likelihood."""
  env, params, sp, eps_a, _, cfg = _setup()
  changed = ep_lib.counterfactual_rollout(env, params, eps_a, ep_lib.uniform_policy(5),
                                          key=jax.random.PRNGKey(11))
  np.testing.assert_array_equal(np.asarray(changed.obs[:, 0]), np.asarray(eps_a.obs[:, 0]))
  assert (np.asarray(changed.obs[:, 1:]) != np.asarray(eps_a.obs[:, 1:])).any()
  key = jax.random.PRNGKey(3)
  _, ll_a = sc.sample_levels(key, SMALL, sp, eps_a, 1, K)
  _, ll_c = sc.sample_levels(key, SMALL, sp, changed, 1, K)
  np.testing.assert_array_equal(np.asarray(ll_a), np.asarray(ll_c))
  # One sample per episode (the rejection step also reads h_1's reward r_0, which the other
  # actions may change).
  one = dataclasses.replace(cfg, posterior_tries=1)
  la, _, _ = P.infer_scenarios("gps", key, one, sp, env, params, eps_a)
  lc, _, _ = P.infer_scenarios("gps", key, one, sp, env, params, changed)
  np.testing.assert_array_equal(_classes(la), _classes(lc))
  _, ll_a_t = sc.sample_levels(key, SMALL, sp, eps_a, T, K)
  _, ll_c_t = sc.sample_levels(key, SMALL, sp, changed, T, K)
  assert np.abs(np.asarray(ll_a_t) - np.asarray(ll_c_t)).max() > 1e-3


def test_inconsistent_real_episode_refused():
  env, params, sp, eps_a, _, cfg = _setup()
  bad = eps_a._replace(obs=eps_a.obs.at[0, 0].set(eps_a.obs[1, 0]))  # another level's o_0
  for method in ("cfgps", "gps", "cf_true"):
    with pytest.raises(ValueError, match=r"real episodes\[0\] is inconsistent with its "
                       "recorded level"):
      P.infer_scenarios(method, jax.random.PRNGKey(0), cfg, sp, env, params, bad)


def test_cf_true_uses_the_logged_level_and_noise():
  env, params, sp, eps_a, _, cfg = _setup()
  levels, replay, ok = P.infer_scenarios("cf_true", jax.random.PRNGKey(0), cfg, sp, env,
                                         params, eps_a)
  np.testing.assert_array_equal(_classes(levels), _classes(eps_a.level))
  assert replay is eps_a and ok.all()


def test_parametric_rollouts_equal_plain_ones():
  """`log_on_levels_theta` / `counterfactual_rollout_theta` with pi_theta's factory equal
  `log_on_levels` / `counterfactual_rollout` with the policy built directly (same keys)."""
  env, params, _, eps_a, _, _ = _setup(3)
  net = S.PolicyNet(4, 8)
  theta = net.init(jax.random.PRNGKey(0), jnp.zeros((H, W, S.NUM_FEATURES)))
  make = S.policy_factory(net, H, W)
  assert S.policy_factory(net, H, W) is make  # one object: one compilation
  pi = S.network_policy(net, theta, H, W)
  a = ep_lib.log_on_levels(jax.random.PRNGKey(4), env, params, pi, eps_a.level, T)
  b = ep_lib.log_on_levels_theta(jax.random.PRNGKey(4), env, params, make, theta,
                                 eps_a.level, T)
  np.testing.assert_array_equal(np.asarray(a.action), np.asarray(b.action))
  np.testing.assert_allclose(np.asarray(a.log_prob), np.asarray(b.log_prob), atol=1e-6)
  c = ep_lib.counterfactual_rollout(env, params, eps_a, pi, key=jax.random.PRNGKey(5))
  d = ep_lib.counterfactual_rollout_theta(env, params, eps_a, make, theta,
                                          key=jax.random.PRNGKey(5))
  np.testing.assert_array_equal(np.asarray(c.action), np.asarray(d.action))
  np.testing.assert_array_equal(np.asarray(c.obs), np.asarray(d.obs))


def test_scenario_cache_round_trip_and_corruption(tmp_path):
  """A second `train_cached` with the same spec loads bit-identical parameters without
  calling the data function; a flipped byte, or a file of the wrong shapes, is refused by
  name."""
  env, params, _, eps_a, _, _ = _setup(4)
  data = sc.with_t_set(sc.ScenarioData(sc.obs_codes(eps_a.obs), eps_a.action.astype(jnp.int8),
                                       sc.level_to_classes(eps_a.level),
                                       jnp.full((4,), T, jnp.int32)), SMALL.t_set)
  calls = []

  def data_fn():
    calls.append(1)
    return data
  spec = {"test": 1}
  key = jax.random.PRNGKey(0)
  p1, h1, loaded1 = sc.train_cached(key, SMALL, data_fn, 1, tmp_path, spec, (H - 2, W - 2))
  p2, h2, loaded2 = sc.train_cached(key, SMALL, data_fn, 1, tmp_path, spec, (H - 2, W - 2))
  assert (loaded1, loaded2, len(calls)) == (False, True, 1)
  for x, y in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert h1 == h2
  params_file, _ = sc.cache_path(tmp_path, spec)
  raw = bytearray(params_file.read_bytes())
  raw[len(raw) // 2] ^= 0xFF
  params_file.write_bytes(bytes(raw))
  with pytest.raises(ValueError, match="corrupted scenario-model cache .*scenario_.*msgpack"):
    sc.train_cached(key, SMALL, data_fn, 1, tmp_path, spec, (H - 2, W - 2))
  bigger = dataclasses.replace(SMALL, channels=5)  # same spec file, other shapes
  params_file.write_bytes(bytes(raw))
  with pytest.raises(ValueError, match="corrupted scenario-model cache"):
    sc.train_cached(key, bigger, data_fn, 1, tmp_path, spec, (H - 2, W - 2))


def test_bad_config():
  base = P.PSConfig()
  for bad, match in ((dict(methods=("cfgps", "ppo")), "config.methods"),
                     (dict(iterations=0), "config.iterations"),
                     (dict(gps_t=60), "t=60 is beyond the episode length"),
                     (dict(num_eval_levels=300), "config.num_eval_levels=300 exceeds"),
                     (dict(gps_t=2), "config.gps_t=2 is not a history length"),
                     (dict(a2c=a2c.default_config(num_envs=7, rollout_length=5)),
                      "is not a multiple of num_envs")):
    with pytest.raises(ValueError, match=match):
      P.check_config(dataclasses.replace(base, **bad))


def test_final_and_area_stats_by_hand():
  r = {"eval_solve_rate": [[0.0, 0.5, 1.0], [0.0, 0.25, 0.5]]}
  mean, se = P.final_stats(r, "eval_solve_rate")
  assert mean == pytest.approx(0.75) and se == pytest.approx(0.25)  # sd 0.3536 / sqrt 2
  mean, se = P.area_stats(r, "eval_solve_rate")
  assert mean == pytest.approx((0.75 + 0.375) / 2) and se == pytest.approx(0.1875)


@pytest.mark.slow
def test_a2c_sees_the_same_frames():
  """A2C's budget: exactly iterations * episodes_per_iteration * horizon frames per seed,
  and at least as many completed real episodes as the model-based methods' rounds."""
  cfg = P.PSConfig(height=H, width=W, num_boxes=K, horizon=T, bank_seed=1, num_levels=32,
                   num_heldout=8, num_eval_levels=4, methods=("a2c",), num_seeds=1,
                   iterations=2, episodes_per_iteration=4,
                   a2c=a2c.default_config(num_envs=4, rollout_length=4, hidden_size=16,
                                          conv_features=(4,), kernel_sizes=(3,), strides=(1,)))
  res = P.run(cfg, log=lambda s: None)["methods"]["a2c"]
  np.testing.assert_array_equal(res["frames"], [[4 * T, 8 * T]])
  assert np.sum(res["train_episodes"]) >= 8 - cfg.a2c.num_envs  # episodes still running
