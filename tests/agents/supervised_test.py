"""The shared supervised trainer (`latent_dynamics.supervised`, through its `agents.supervised`
re-export): convergence to the least-squares solution of a linear
regression, the cosine schedule by hand (directly and through Adam's steps), global-norm clipping
against a numpy Adam on a hand case, `chunk` = a loop of `update` on the same draws,
determinism, the step counter, and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import supervised as sup

B1, B2, EPS = 0.9, 0.999, 1e-8   # optax.adam's defaults


def _regression(n=512, d=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = (x @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.3 * rng.normal(size=n)).astype(np.float32)
  return {"x": jnp.asarray(x), "y": jnp.asarray(y)}


def _mse(params, batch):
  err = batch["x"] @ params["w"] + params["b"] - batch["y"]
  return jnp.mean(err ** 2), {"abs_err": jnp.mean(jnp.abs(err))}


def _zeros(d=3):
  return lambda key: {"w": jnp.zeros(d), "b": jnp.zeros(())}


def test_linear_regression_converges_to_least_squares():
  data = _regression()
  x = np.asarray(data["x"], np.float64)
  design = np.concatenate([x, np.ones((x.shape[0], 1))], 1)
  sol = np.linalg.lstsq(design, np.asarray(data["y"], np.float64), rcond=None)[0]
  config = sup.TrainConfig(learning_rate=0.02, final_learning_rate=1e-6, schedule="cosine",
                           decay_steps=3000, steps_per_chunk=3000, batch_size=256)
  trainer = sup.make_trainer(_mse, _zeros(), config)
  state, metrics = trainer.chunk(trainer.init(jax.random.key(0)), data)
  got = np.concatenate([np.asarray(state.params["w"]), [float(state.params["b"])]])
  # The minibatch noise is annealed away by the decay: within 5e-3 of the closed form (measured
  # 0.8e-3-1.6e-3 over keys 0-2; the start, zeros, is 0.5-2.0 away in every coordinate).
  np.testing.assert_allclose(got, sol, atol=5e-3)
  assert np.abs(sol).min() > 0.5
  assert set(metrics) == {"loss", "grad_norm", "abs_err"}
  assert metrics["loss"].shape == (3000,)


def test_cosine_schedule_by_hand():
  lr0, lr_end, steps = 1e-2, 1e-3, 100
  config = sup.TrainConfig(learning_rate=lr0, final_learning_rate=lr_end, decay_steps=steps,
                           schedule="cosine")
  hand = lambda t: lr_end + (lr0 - lr_end) * 0.5 * (1 + np.cos(np.pi * min(t, steps) / steps))
  schedule = sup.make_schedule(config)
  for t, expected in ((0, 1e-2), (25, hand(25)), (50, 5.5e-3), (100, 1e-3), (150, 1e-3)):
    assert hand(t) == pytest.approx(expected, rel=1e-12)
    assert float(schedule(t)) == pytest.approx(expected, rel=1e-6)
  constant = sup.make_schedule(config.replace(schedule="constant"))
  assert [float(constant(t)) for t in (0, 50, 100)] == pytest.approx([lr0] * 3, rel=1e-7)

  # Through the trainer: a linear loss has the constant gradient 1, so Adam's step t moves the
  # parameter by exactly lr_t (m_hat = v_hat = 1; 1 + eps rounds to 1 in float32).
  trainer = sup.make_trainer(lambda p, batch: (jnp.sum(p), {}), lambda key: jnp.zeros(()),
                             config)
  update = jax.jit(trainer.update)
  state, moves = trainer.init(jax.random.key(0)), []
  for _ in range(steps + 1):
    new, _ = update(state, None)
    moves.append(float(state.params - new.params))
    state = new
  assert int(state.steps) == steps + 1
  for t in (0, 50, 100):
    assert moves[t] == pytest.approx(hand(t), rel=1e-4)


def _numpy_adam(targets, lr, max_norm):
  """Adam (optax's defaults) on 0.5 |p - c_t|^2 from p = 0, the gradient clipped to `max_norm`."""
  p = np.zeros(2)
  m, v, out = np.zeros(2), np.zeros(2), []
  for t, c in enumerate(targets, 1):
    g = p - c
    if max_norm > 0:
      g = g * min(1.0, max_norm / np.linalg.norm(g))
    m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g ** 2
    p = p - lr * (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t)) + EPS)
    out.append(p)
  return np.stack(out)


def test_clipping_by_hand():
  """0.5 |p - c_t|^2 from p = 0 with c_1 = (30, 40), c_2 = c_3 = (0.3, 0.4): the first gradient
  has norm 50; clipped at 5 it is (-3, -4), and Adam's first moment after one step holds 0.1 of
  that. Three steps agree with a numpy Adam on clipped gradients and differ from the unclipped
  run (Adam divides by the gradients' scale, so clipping shows once the gradients' norms change:
  here the large first gradient, kept at 50, makes the unclipped run's later steps smaller)."""
  targets = np.array([[30.0, 40.0], [0.3, 0.4], [0.3, 0.4]], np.float32)
  loss = lambda p, c: (0.5 * jnp.sum((p - c) ** 2), {})
  runs = {}
  for max_norm in (5.0, 0.0):
    trainer = sup.make_trainer(loss, lambda key: jnp.zeros(2),
                               sup.TrainConfig(learning_rate=0.1, max_grad_norm=max_norm))
    state, path = trainer.init(jax.random.key(0)), []
    for step, c in enumerate(targets):
      state, metrics = trainer.update(state, jnp.asarray(c))
      path.append(np.asarray(state.params, np.float64))
      if step == 0:
        assert float(metrics["grad_norm"]) == pytest.approx(50.0, rel=1e-6)   # unclipped
        if max_norm > 0:
          np.testing.assert_allclose(np.asarray(state.opt_state[1][0].mu), [-0.3, -0.4],
                                     rtol=1e-6)
    runs[max_norm] = np.stack(path)
    np.testing.assert_allclose(runs[max_norm], _numpy_adam(targets, 0.1, max_norm), rtol=1e-5)
  assert np.abs(runs[5.0][1:] - runs[0.0][1:]).max() > 1e-2


def test_chunk_counts_steps_is_deterministic_and_equals_a_loop_of_updates():
  data = _regression(n=40)
  config = sup.TrainConfig(learning_rate=0.01, batch_size=8, steps_per_chunk=7,
                           max_grad_norm=1.0)
  trainer = sup.make_trainer(_mse, _zeros(), config)
  state0 = trainer.init(jax.random.key(3))
  s1, m1 = trainer.chunk(state0, data)
  s2, m2 = trainer.chunk(state0, data)
  assert int(s1.steps) == 7 and m1["loss"].shape == (7,)
  jax.tree.map(np.testing.assert_array_equal,
               (s1.params, s1.opt_state, jax.random.key_data(s1.key), m1),
               (s2.params, s2.opt_state, jax.random.key_data(s2.key), m2))
  s3, _ = trainer.chunk(s1, data)
  assert int(s3.steps) == 14
  other, _ = trainer.chunk(trainer.init(jax.random.key(4)), data)
  assert not np.array_equal(np.asarray(other.params["w"]), np.asarray(s1.params["w"]))
  # The documented draw: key, k = split(key); idx = randint(k, (batch_size,), 0, N).
  s = state0
  for t in range(7):
    key, k = jax.random.split(s.key)
    idx = jax.random.randint(k, (8,), 0, 40)
    s, m = trainer.update(s._replace(key=key), jax.tree.map(lambda x: x[idx], data))
    assert float(m["loss"]) == pytest.approx(float(m1["loss"][t]), rel=1e-5)
  np.testing.assert_allclose(np.asarray(s.params["w"]), np.asarray(s1.params["w"]), rtol=1e-5)


def test_bad_input_names_the_field():
  for field, value in (("batch_size", 0), ("steps_per_chunk", 1.5), ("learning_rate", 0.0),
                       ("schedule", "linear")):
    with pytest.raises(ValueError, match=f"config.{field}"):
      sup.make_trainer(_mse, _zeros(), sup.TrainConfig(**{field: value}))
  with pytest.raises(ValueError, match="config.decay_steps"):
    sup.make_schedule(sup.TrainConfig(schedule="cosine", decay_steps=0))
  trainer = sup.make_trainer(_mse, _zeros(), sup.TrainConfig())
  with pytest.raises(ValueError, match="share a non-empty leading axis"):
    trainer.chunk(trainer.init(jax.random.key(0)), {"x": jnp.zeros((5, 3)), "y": jnp.zeros(4)})


def test_host_loop_equals_the_scanned_chunk():
  # loop="host" runs the chunk's steps as jitted steps from Python: the same draws and updates
  # as the one lax.scan (to float32 rounding: two compilations), metrics stacked alike.
  data = _regression(n=40)
  base = sup.TrainConfig(learning_rate=0.05, batch_size=8, steps_per_chunk=6, max_grad_norm=1.0)
  runs = {}
  for loop in ("scan", "host"):
    trainer = sup.make_trainer(_mse, _zeros(), base.replace(loop=loop))
    state, metrics = trainer.chunk(trainer.init(jax.random.key(5)), data)
    state, more = trainer.chunk(state, data)
    runs[loop] = (state, metrics, more)
  (s1, m1, n1), (s2, m2, n2) = runs["scan"], runs["host"]
  assert int(s2.steps) == 12 and m2["loss"].shape == (6,) and set(m2) == set(m1)
  np.testing.assert_array_equal(jax.random.key_data(s1.key), jax.random.key_data(s2.key))
  for a, b in ((s1.params, s2.params), (m1, m2), (n1, n2)):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  assert float(m2["loss"][0]) > 2 * float(n2["loss"][-1])   # it learns (zeros start far off)


def test_host_loop_refuses_to_run_traced():
  # Under jit the host loop would be inlined step by step into one program (24 GB for a
  # 200-step SSM chunk): refused by name instead.
  trainer = sup.make_trainer(_mse, _zeros(), sup.TrainConfig(batch_size=4, steps_per_chunk=3,
                                                             loop="host"))
  state = trainer.init(jax.random.key(0))
  with pytest.raises(ValueError, match="loop='host' chunk cannot run traced"):
    jax.jit(trainer.chunk)(state, _regression(n=16))


def test_stochastic_loss_gets_the_documented_keys():
  # loss_takes_key: each chunk step splits key, k_idx, k_loss = split(key, 3), draws with k_idx
  # and passes k_loss to the loss; a hand loop of optax's Adam on those draws reproduces it.
  data = _regression(n=40)

  def noisy(params, batch, key):   # a gradient that depends on the key: noise on w
    loss, aux = _mse(params, batch)
    return loss + jnp.sum(params["w"] * jax.random.normal(key, (3,))), aux

  config = sup.TrainConfig(learning_rate=0.01, batch_size=8, steps_per_chunk=4)
  trainer = sup.make_trainer(noisy, _zeros(), config, loss_takes_key=True)
  state0 = trainer.init(jax.random.key(6))
  got, _ = trainer.chunk(state0, data)
  opt = optax.adam(0.01)
  params, opt_state, key = state0.params, opt.init(state0.params), state0.key
  for _ in range(4):
    key, k_idx, k_loss = jax.random.split(key, 3)
    batch = jax.tree.map(lambda x: x[jax.random.randint(k_idx, (8,), 0, 40)], data)
    grads = jax.grad(lambda p: noisy(p, batch, k_loss)[0])(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7),
               got.params, params)
  # Without the key's noise term the result differs (the key reached the loss).
  plain, _ = sup.make_trainer(lambda p, b, k: _mse(p, b), _zeros(), config,
                              loss_takes_key=True).chunk(state0, data)
  assert np.abs(np.asarray(plain.params["w"]) - np.asarray(got.params["w"])).max() > 1e-3
  # update(state, batch) splits key, k = split(key) and passes k.
  new, _ = trainer.update(state0, data)
  key, k = jax.random.split(state0.key)
  np.testing.assert_array_equal(jax.random.key_data(new.key), jax.random.key_data(key))
  grads = jax.grad(lambda p: noisy(p, data, k)[0])(state0.params)
  want = optax.apply_updates(state0.params, opt.update(grads, opt.init(state0.params))[0])
  np.testing.assert_allclose(np.asarray(new.params["w"]), np.asarray(want["w"]), rtol=1e-6)


def test_init_from_given_params_and_bad_loop():
  trainer = sup.make_trainer(_mse, _zeros(), sup.TrainConfig())
  start = {"w": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array(4.0)}
  state = trainer.init(jax.random.key(0), start)
  assert int(state.steps) == 0
  np.testing.assert_array_equal(np.asarray(state.params["w"]), [1.0, 2.0, 3.0])
  # The same key split as a fresh init: only the params differ.
  fresh = trainer.init(jax.random.key(0))
  np.testing.assert_array_equal(jax.random.key_data(state.key), jax.random.key_data(fresh.key))
  with pytest.raises(ValueError, match="config.loop must be one of"):
    sup.make_trainer(_mse, _zeros(), sup.TrainConfig(loop="while"))
