"""Tests of the scenario model (agents.cfgps.scenario): level <-> classes, the backward history
summary by hand, the autoregressive masks (a tile's logits never see itself or later tiles),
the log-likelihood as a sum of per-tile terms, the counts of constrained samples,
consistency with a history, bad input by name, and (slow) the posterior at t = 50
concentrating on the true level on easy histories."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import cfgps
from agents.cfgps import scenario as sc
from envs import po_sokoban, sokoban


@pytest.fixture(scope="module")
def env():
  return po_sokoban.POSokoban()


@pytest.fixture(scope="module")
def bank(env):
  return env.eval_params(256).levels  # cached App. D.3 levels


@pytest.fixture(scope="module")
def small_net():
  net = sc.ScenarioNet(channels=8, layers=2, cond_layers=1)
  params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 5)),
                    jnp.zeros((1, 8, 8, sc.NUM_FEATURES)))
  return net, params


def test_classes_round_trip(bank):
  levels = bank[:16]
  back = sc.classes_to_level(sc.level_to_classes(levels))
  for name in ("walls", "targets", "boxes", "player"):
    np.testing.assert_array_equal(np.asarray(getattr(back, name)),
                                  np.asarray(getattr(levels, name)))
  counts = np.bincount(np.asarray(sc.level_to_classes(levels[0])).ravel(), minlength=5)
  assert counts[sc.TARGET] == 3 and counts[sc.BOX] == 3 and counts[sc.PLAYER] == 1


def test_history_features_by_hand():
  codes = np.full((11, 4, 4), sokoban.FLOOR, np.int8)
  codes[3, 1, 1] = sokoban.WALL      # interior tile (0, 0) seen as wall at steps 3 and 7
  codes[7, 1, 1] = sokoban.WALL
  codes[0, 2, 2] = sokoban.PLAYER    # interior tile (1, 1): player at step 0
  f = np.asarray(sc.history_features(jnp.asarray(codes), 5))
  wall = sc.SEEN_CODES.index(sokoban.WALL)
  player = sc.SEEN_CODES.index(sokoban.PLAYER)
  np.testing.assert_allclose(f[0, 0, 3 * wall:3 * wall + 3], [1.0, 1 / 50, np.exp(-3 / 5)],
                             rtol=1e-6)  # step 7 is beyond t = 5
  np.testing.assert_allclose(f[1, 1, 3 * player:3 * player + 3], [1.0, 1 / 50, 1.0], rtol=1e-6)
  np.testing.assert_allclose(f[..., -1], 0.1)
  np.testing.assert_allclose(f[1, 1, -2], 1.0)  # the step-0 sighting back-projects to itself
  # With actions: a sighting at step 2 after "right" (4) and "down" (2) back-projects up-left.
  codes2 = np.full((11, 5, 5), sokoban.FLOOR, np.int8)
  codes2[2, 3, 3] = sokoban.PLAYER
  acts = np.array([4, 2] + [0] * 8)
  f2 = np.asarray(sc.history_features(jnp.asarray(codes2), 5, jnp.asarray(acts)))
  np.testing.assert_allclose(f2[1, 1, -2], np.exp(-2 / 10), rtol=1e-6)  # (2, 2) interior (1, 1)
  assert f2[..., -2].sum() == pytest.approx(np.exp(-2 / 10))
  f8 = np.asarray(sc.history_features(jnp.asarray(codes), 8))
  np.testing.assert_allclose(f8[0, 0, 3 * wall:3 * wall + 3], [1.0, 2 / 50, np.exp(-3 / 5)],
                             rtol=1e-6)
  f0 = np.asarray(sc.history_features(jnp.asarray(codes), 0))
  assert not f0.any()  # t = 0: nothing seen, t / 50 = 0: the prior


def test_autoregressive_masks(small_net):
  net, params = small_net
  apply = jax.jit(net.apply)
  key = jax.random.PRNGKey(1)
  classes = jax.random.randint(key, (8, 8), 0, 5)
  feats = jax.random.normal(key, (1, 8, 8, sc.NUM_FEATURES))
  onehot = jax.nn.one_hot(classes, 5)[None]
  base = apply(params, onehot, feats)[0].reshape(64, 5)
  for j in (0, 9, 27, 63):
    changed = jnp.where((jnp.arange(64) >= j).reshape(8, 8), (classes + 1) % 5, classes)
    out = apply(params, jax.nn.one_hot(changed, 5)[None], feats)[0].reshape(64, 5)
    np.testing.assert_allclose(out[: j + 1], base[: j + 1], atol=1e-5)  # tiles <= j unchanged
  # and an earlier tile does reach a later one
  changed = classes.at[0, 0].set((classes[0, 0] + 1) % 5)
  out = apply(params, jax.nn.one_hot(changed, 5)[None], feats)[0].reshape(64, 5)
  assert np.abs(np.asarray(out[1] - base[1])).max() > 1e-6


def test_log_likelihood_is_sum_of_tiles(small_net):
  net, params = small_net
  key = jax.random.PRNGKey(2)
  classes = jax.random.randint(key, (2, 8, 8), 0, 5)
  feats = jax.random.normal(key, (2, 8, 8, sc.NUM_FEATURES))
  ll = np.asarray(sc.log_likelihood(net, params, classes, feats))
  logits = np.asarray(net.apply(params, jax.nn.one_hot(classes, 5), feats), np.float64)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  want = [sum(logp[b, r, c, int(classes[b, r, c])] for r in range(8) for c in range(8))
          for b in range(2)]
  np.testing.assert_allclose(ll, want, rtol=1e-5)


def test_constrained_samples_have_the_counts(small_net):
  net, params = small_net
  feats = jnp.zeros((8, 8, sc.NUM_FEATURES))
  keys = jax.random.split(jax.random.PRNGKey(3), 32)
  samples = np.asarray(jax.jit(jax.vmap(lambda k: sc.sample(net, params, k, feats, 3)))(keys))
  for s in samples:
    counts = np.bincount(s.ravel(), minlength=5)
    assert (counts[sc.TARGET], counts[sc.BOX], counts[sc.PLAYER]) == (3, 3, 1)


def test_consistency_with_history(env, bank):
  params = env.make_params(bank[:8])
  eps = cfgps.log_on_levels(jax.random.PRNGKey(4), env, params, cfgps.uniform_policy(5),
                            bank[:8], 50)
  assert sc.consistent_with_history(env, params, eps, eps.level, 50).all()
  other = jax.tree.map(lambda x: jnp.roll(x, 1, axis=0), eps.level)  # another episode's level
  assert sc.consistent_with_history(env, params, eps, other, 0).all()   # h_0 is empty
  assert not sc.consistent_with_history(env, params, eps, other, 50).any()


def test_bad_input(env, bank):
  with pytest.raises(ValueError, match="too few for a held-out split of num_heldout=300"):
    sc.split_bank(bank, 300)
  train, held = sc.split_bank(bank, 56)
  assert train.num_levels == 200 and held.num_levels == 56
  params = env.make_params(bank[:4])
  eps = cfgps.log_on_levels(jax.random.PRNGKey(5), env, params, cfgps.uniform_policy(5),
                            bank[:4], 10)
  with pytest.raises(ValueError, match="t=20 is beyond the episode length"):
    sc.consistent_with_history(env, params, eps, eps.level, 20)
  cfg = sc.ScenarioConfig(channels=8, layers=1, cond_layers=1)
  with pytest.raises(ValueError, match="t=20 is beyond the episode length"):
    sc.posterior_report(jax.random.PRNGKey(0), cfg, None, env, params, eps, t_set=(20,))
  bad = eps._replace(level=jax.tree.map(lambda x: jnp.roll(x, 1, axis=0), eps.level))
  with pytest.raises(ValueError, match=r"episodes\[0\] is inconsistent with its recorded level"):
    sc.posterior_report(jax.random.PRNGKey(0), cfg, None, env, params, bad, t_set=(5,))


@pytest.mark.slow
def test_posterior_concentrates_at_t50_on_easy_histories(env, bank):
  """Eight levels, histories of the uniformly random policy: at t = 50 every tile has been
  seen about 5 times, so h_50 identifies the level (easy); after maximum-likelihood training
  the posterior's samples are the true level at least 90% of the time (tolerance), while at
  t = 0 (the prior over eight levels) at most about 1/8 + noise are."""
  levels = bank[:8]
  params = env.make_params(levels)
  reps = jax.tree.map(lambda x: jnp.tile(x, (32,) + (1,) * (x.ndim - 1)), levels)
  data = sc.with_t_set(sc.collect(jax.random.PRNGKey(6), env, params, reps, 50), (0, 50))
  cfg = sc.ScenarioConfig(channels=16, layers=2, cond_layers=2, t_set=(0, 50),
                          train=sc.supervised.TrainConfig(learning_rate=3e-3, batch_size=32,
                                                          steps_per_chunk=100))
  net_params, _ = sc.train(jax.random.PRNGKey(7), cfg, data, 4)
  test_eps = cfgps.log_on_levels(jax.random.PRNGKey(8), env, params, cfgps.uniform_policy(5),
                                 jax.tree.map(lambda x: jnp.tile(x, (4,) + (1,) * (x.ndim - 1)),
                                              levels), 50)
  rep = sc.posterior_report(jax.random.PRNGKey(9), cfg, net_params, env, params, test_eps,
                            t_set=(0, 50))
  assert rep[50]["exact"] >= 0.9, rep
  assert rep[50]["consistent"] >= 0.9, rep
  assert rep[0]["exact"] <= 0.4, rep
  assert rep[50]["log_lik"] > rep[0]["log_lik"] + 5.0, rep


def test_rejection_keeps_consistent_samples(env, bank, small_net):
  """At t = 0 every sample is consistent: the first try is kept (the plain sample of key
  fold_in(key, 0)); at t = 10 a kept sample that is marked found is consistent."""
  net, params = small_net
  cfg = sc.ScenarioConfig(channels=8, layers=2, cond_layers=1)
  env_params = env.make_params(bank[:4])
  eps = cfgps.log_on_levels(jax.random.PRNGKey(5), env, env_params, cfgps.uniform_policy(5),
                            bank[:4], 10)
  key = jax.random.PRNGKey(6)
  levels, found = sc.sample_consistent_levels(key, cfg, params, env, env_params, eps, 0, 3)
  plain, _ = sc.sample_levels(jax.random.fold_in(key, 0), cfg, params, eps, 0, 3)
  assert found.all()
  np.testing.assert_array_equal(np.asarray(levels.boxes), np.asarray(plain.boxes))
  levels, found = sc.sample_consistent_levels(key, cfg, params, env, env_params, eps, 10, 2)
  ok = sc.consistent_with_history(env, env_params, eps, levels, 10)
  assert (ok | ~found).all() and (ok == found).all()
  with pytest.raises(ValueError, match="tries must be a positive integer"):
    sc.sample_consistent_levels(key, cfg, params, env, env_params, eps, 10, 0)
