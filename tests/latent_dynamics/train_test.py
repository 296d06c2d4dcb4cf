"""SGVB training: the stochastic_graphs surrogate, minibatches, recovery of the Kalman smoother."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import kalman, models, train


def _lds(t=15, n_trials=1, seed=0):
  n, p = 2, 4
  th = 0.3
  a = 0.95 * jnp.asarray([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
  c = jnp.asarray(np.random.default_rng(seed).normal(size=(p, n)))
  params = models.lds_params(a, 0.1 * jnp.eye(n), c, 0.5 * jnp.ones(p))
  model = models.make_model("lds", n, p)
  _, y = jax.vmap(lambda k: model.sample(params, k, t))(
      jax.random.split(jax.random.key(seed), n_trials))
  return model, params, y


def _config(**kw):
  c = train.default_config()
  c.update(dict(dict(model="lds", latent_dim=2, recognition="structured", batch_size=1), **kw))
  return c


def test_surrogate_gradient_is_the_reparameterised_gradient(x64):
  _, params, y = _lds(t=6, n_trials=2)
  trainer = train.make_trainer(_config(num_samples=3, batch_size=2), train.make_dataset(y))
  state = trainer.init(jax.random.key(0))
  batch = train.minibatch(train.make_dataset(y), jax.random.key(1), 2, 0)

  def plain(p):
    elbo, num_valid = trainer.elbo(p, batch, jax.random.key(2))
    return -elbo / num_valid

  def both(p):  # one jit for both gradients: one compilation
    return (jax.grad(lambda q: trainer.loss(q, batch, jax.random.key(2))[0])(p),
            jax.grad(plain)(p))

  g_sg, g_plain = jax.jit(both)(state.params)
  for a, b in zip(jax.tree.leaves(g_sg), jax.tree.leaves(g_plain)):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_minibatch_windows_stay_inside_trials():
  y = jnp.arange(3 * 10 * 1, dtype=jnp.float32).reshape(3, 10, 1)
  mask = jnp.asarray([[1.0] * 10, [1.0] * 6 + [0.0] * 4, [1.0] * 3 + [0.0] * 7])
  data = train.make_dataset(y, mask)
  batch = jax.jit(lambda k: train.minibatch(data, k, 64, 4))(jax.random.key(0))
  assert batch["y"].shape == (64, 4, 1)
  for yi, mi, idx in zip(np.asarray(batch["y"]), np.asarray(batch["mask"]), batch["index"]):
    start = int(yi[0, 0]) - 10 * int(idx)
    np.testing.assert_array_equal(yi[:, 0], 10 * idx + start + np.arange(4))
    length = int(mask[idx].sum())
    assert 0 <= start <= max(length - 4, 0)
    np.testing.assert_array_equal(mi, (start + np.arange(4) < length).astype(float))


def test_variable_length_trials_are_padded():
  data = train.make_dataset([np.ones((5, 2)), np.ones((3, 2))])
  np.testing.assert_array_equal(data.mask, [[1] * 5, [1, 1, 1, 0, 0]])
  assert data.y.shape == (2, 5, 2) and float(data.y[1, 4].sum()) == 0.0


def test_structured_posterior_recovers_kalman_smoother(x64):
  """Archer et al. 2015, Sec. 4.1: fitted q matches the exact smoother (means 2%, variances 5%)."""
  model, params, y = _lds(t=15)
  config = _config(amortized=False, learn_generative=False, num_samples=32,
                   learning_rate=0.05, schedule="cosine", num_steps=800)
  data = train.make_dataset(y)
  trainer = train.make_trainer(config, data, gen_params=params)
  state, metrics = train.make_train(config, data, gen_params=params)(jax.random.key(1))
  q = trainer.recognition.posterior(state.params["rec"], params,
                                    {"y": data.y, "mask": data.mask, "index": jnp.array([0])})
  d = models.dynamics(params)
  ks = kalman.kalman_smoother(d["m0"], d["lq0"] @ d["lq0"].T, d["a"], d["lq"] @ d["lq"].T,
                              params["obs"]["c"], jnp.diag(jnp.exp(2 * params["obs"]["log_r"])),
                              y[0])
  mean_err = jnp.linalg.norm(q.mean()[0] - ks.smoothed_means) / jnp.linalg.norm(ks.smoothed_means)
  kv = jnp.diagonal(ks.smoothed_covs, axis1=-2, axis2=-1)
  var_err = jnp.max(jnp.abs(q.variance()[0] - kv) / kv)
  assert mean_err < 0.02, mean_err
  assert var_err < 0.05, var_err
  # The ELBO per step approaches log p(y) / T from below (tight when q is exact).
  final = float(jnp.mean(metrics["elbo_per_step"][-100:]))
  assert abs(final - float(ks.log_likelihood) / 15) < 0.02


def test_joint_training_improves_elbo_vmapped_over_seeds():
  """PLDS + amortized mean-field, windows of long trials, 2 seeds at once: the ELBO rises."""
  model = models.make_model("plds", 2, 8)
  params = model.init(jax.random.key(0))
  params["obs"]["d"] = jnp.full(8, 0.5)
  _, y = jax.vmap(lambda k: model.sample(params, k, 20))(jax.random.split(jax.random.key(1), 4))
  config = _config(model="plds", recognition="mean_field", window=8, batch_size=2,
                   num_samples=2, num_steps=80, learning_rate=2e-2, recognition_hidden=(16,))
  train_fn = train.make_train(config, train.make_dataset(y))
  _, metrics = jax.vmap(train_fn)(jax.random.split(jax.random.key(2), 2))
  elbo = np.asarray(metrics["elbo_per_step"])
  assert elbo.shape == (2, 80) and np.all(np.isfinite(elbo))
  assert np.all(elbo[:, -20:].mean(1) > elbo[:, :20].mean(1) + 0.1)


def test_bad_config():
  _, _, y = _lds(t=6)
  data = train.make_dataset(y)
  with pytest.raises(ValueError, match="too short"):
    train.make_trainer(_config(window=1), data)
  with pytest.raises(ValueError, match="longer than the trials"):
    train.make_trainer(_config(window=7), data)
  with pytest.raises(ValueError, match="amortized"):
    train.make_trainer(_config(window=3, amortized=False), data)
  with pytest.raises(ValueError, match="non-finite"):
    train.make_trainer(_config(), train.make_dataset(y.at[0, 0, 0].set(jnp.nan)))
