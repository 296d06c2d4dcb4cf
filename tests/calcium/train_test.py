"""Tests of calcium.train on small simulated SCF data."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from calcium import models, train


@pytest.fixture(scope="module")
def simulated():
  m = models.make_model("scf", frame_rate=60.0)
  raw = m.init(tau=0.5, alpha=3.0, beta=0.0, sigma=1.0, rate=1.0)
  sim = jax.jit(jax.vmap(lambda k: m.simulate(raw, k, 1500)))
  s, f = sim(jax.random.split(jax.random.key(0), 3))
  return train.Dataset(np.asarray(f), np.ones(f.shape[:2], bool), np.full(3, 1500), np.asarray(s))


def _config(**kw):
  c = train.default_config()
  c.update(num_samples=16, batch_size=4, snippet_frames=100, buffer_frames=20, features=(16, 16),
           kernel_size=(9, 9),
           num_steps=300, learning_rate=3e-3, init_tau=0.8, init_alpha=2.0, steps_per_chunk=10)
  c.update(**kw)
  return c


def _corr(trainer, state, ds):
  p = trainer.recognition.probabilities(state.recognition_params, ds.fluorescence[0])
  return np.corrcoef(np.asarray(p)[:, 0], ds.spikes[0, :, 0])[0, 1]


def test_unsupervised_vimco_learns_spikes(simulated):
  c = _config()
  state, metrics = train.make_train(c, simulated)(jax.random.key(1))
  bound = np.asarray(metrics["bound_per_frame"])
  assert bound[-50:].mean() > bound[:50].mean() + 1.0
  # Exact per-frame log-likelihood of the truth is about -1.42 (unit noise) plus the spike prior.
  assert -3.0 < bound[-50:].mean() < -1.2
  assert _corr(train.make_trainer(c, simulated), state, simulated) > 0.5


def test_supervised_cross_entropy_decreases(simulated):
  c = _config(unsupervised_weight=0.0, supervised_weight=1.0, num_steps=200)
  state, metrics = train.make_train(c, simulated)(jax.random.key(2))
  ce = np.asarray(metrics["cross_entropy_per_frame"])
  assert ce[-20:].mean() < 0.5 * ce[:20].mean()
  assert _corr(train.make_trainer(c, simulated), state, simulated) > 0.5


def test_loss_value_is_negative_bound_and_chunk_runs(simulated):
  c = _config(batch_size=2)
  trainer = train.make_trainer(c, simulated)
  state = trainer.init(jax.random.key(0))
  state, metrics = jax.jit(trainer.chunk)(state)
  # VIMCO's surrogate has forward value -L, so the per-frame loss equals minus the bound.
  np.testing.assert_allclose(metrics["loss"], -metrics["bound_per_frame"], rtol=1e-5)
  assert int(state.step) == 10 and bool(jnp.all(jnp.isfinite(metrics["grad_norm"])))
  assert jax.tree.leaves(state.generative_params)[0].shape[0] == 3  # One set per cell.


def test_bad_input(simulated):
  with pytest.raises(ValueError, match="receptive field"):
    train.make_trainer(_config(snippet_frames=4, buffer_frames=2), simulated)
  with pytest.raises(ValueError, match="needs dataset.spikes"):
    train.make_trainer(_config(supervised_weight=1.0), simulated._replace(spikes=None))
  with pytest.raises(ValueError, match="config.recognition"):
    train.make_trainer(_config(recognition="gru"), simulated)
  with pytest.raises(ValueError, match="shortest has 1500"):
    train.make_trainer(_config(snippet_frames=1500), simulated)


def test_initial_alpha_sets_single_spike_peak():
  m = models.make_model("scdf")
  ds = train.Dataset(np.random.default_rng(0).normal(size=(2, 300, 1)), np.ones((2, 300), bool),
                     np.full(2, 300))
  c = _config(model="scdf", init_alpha=2.5, init_from_data=False)
  raws = train.initial_generative_params(m, ds, c)
  one = np.zeros((60, 1))
  one[0] = 1.0
  raw0 = jax.tree.map(lambda x: x[0], raws)
  mu = np.asarray(m.mean_fluorescence(raw0, one))[:, 0]
  np.testing.assert_allclose(mu.max() - float(m.constrain(raw0)["beta"]), 2.5,
                             rtol=1e-5)
  np.testing.assert_allclose(m.constrain(raw0)["sigma"], train_noise(ds.fluorescence[0]),
                             rtol=1e-5)


def train_noise(f):
  return np.median(np.abs(np.diff(f, axis=0)), axis=0)[0] / (0.6745 * np.sqrt(2))


def test_ds_bap_super_resolution_chunk_runs():
  # Two traces (spine, dendrite), two spike trains, spikes on a grid twice the frame rate.
  m = models.make_model("ds_bap", frame_rate=30.0, upsample=2)
  s, f = jax.jit(jax.vmap(lambda k: m.simulate(m.init(alpha=(3.0, 3.0)), k, 200)))(
      jax.random.split(jax.random.key(0), 2))
  ds = train.make_dataset(list(np.asarray(f)), list(np.asarray(s)))
  assert ds.fluorescence.shape == (2, 200, 2) and ds.spikes.shape == (2, 400, 2)
  c = _config(model="ds_bap", frame_rate=30.0, upsample=2, features=(4,), kernel_size=(9,),
              num_samples=4, batch_size=2, snippet_frames=40, buffer_frames=10, steps_per_chunk=3,
              supervised_weight=1.0)
  trainer = train.make_trainer(c, ds)
  state, metrics = jax.jit(trainer.chunk)(trainer.init(jax.random.key(1)))
  assert all(bool(jnp.all(jnp.isfinite(v))) for v in metrics.values())
  probs = trainer.recognition.probabilities(state.recognition_params, ds.fluorescence[0])
  assert probs.shape == (400, 2)
  np.testing.assert_allclose(train.infer(trainer.recognition, state.recognition_params,
                                         ds.fluorescence[0], upsample=2),
                             np.asarray(probs).reshape(200, 2, 2).sum(1), rtol=1e-6)


def test_fixed_true_generative_params_stay_fixed(simulated):
  m = models.make_model("scf", frame_rate=60.0)
  raw = m.init(tau=0.5, alpha=3.0, beta=0.0, sigma=1.0, rate=1.0)
  true = jax.tree.map(lambda x: jnp.stack([x] * 3), raw)
  c = _config(train_generative=False, batch_size=2)
  trainer = train.make_trainer(c, simulated, true)
  state0 = trainer.init(jax.random.key(0))
  state, _ = jax.jit(trainer.chunk)(state0)
  for k in true:
    np.testing.assert_array_equal(state.generative_params[k], true[k])
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.recognition_params,
                       state0.recognition_params)
  assert max(jax.tree.leaves(moved)) > 0  # The network still learns.
  with pytest.raises(ValueError, match="generative_params must be a dict with keys"):
    train.make_trainer(c, simulated, {"tau": true["tau"]})
  with pytest.raises(ValueError, match="leading axis of 3 cells"):
    train.make_trainer(c, simulated, jax.tree.map(lambda x: x[:2], true))


def test_moment_initialisation_is_near_the_truth(simulated):
  # Three 1500-frame SCF traces with tau 0.5 s, alpha 3, 1 Hz: moments land near the truth,
  # while the fallbacks (init_from_data=False) are the config's values.
  m = models.make_model("scf", frame_rate=60.0)
  phys = jax.vmap(m.constrain)(train.initial_generative_params(m, simulated, _config()))
  assert np.all(np.abs(np.asarray(phys["tau"]) / 0.5 - 1) < 0.35)
  assert np.all(np.abs(np.asarray(phys["alpha"]) / 3.0 - 1) < 0.5)
  off = jax.vmap(m.constrain)(train.initial_generative_params(
      m, simulated, _config(init_from_data=False)))
  np.testing.assert_allclose(off["tau"], 0.8, rtol=1e-5)
  np.testing.assert_allclose(off["alpha"], 2.0, rtol=1e-5)


def test_make_dataset_bad_traces():
  good = np.random.default_rng(0).normal(size=(10, 1))
  with pytest.raises(ValueError, match=r"traces\[1\] has no finite frame"):
    train.make_dataset([good, np.full(10, np.nan)])
  with pytest.raises(ValueError, match=r"traces\[1\] has 2 trace\(s\) per frame"):
    train.make_dataset([good, np.ones((10, 2))])
  with pytest.raises(ValueError, match=r"traces\[1\]: fluorescence has zero noise level"):
    train.make_dataset([good, np.ones(10)])
  with pytest.raises(ValueError, match="config.kernel_size must give one width per layer"):
    train.build_recognition(_config(kernel_size=(9,)), models.make_model("scf"))


@pytest.fixture(scope="module")
def simulated_rise():
  m = models.make_model("scf_rise", frame_rate=60.0)
  raw = m.init(tau=1.0, tau_rise=0.1, alpha=4.0, beta=0.0, sigma=1.0, rate=1.0)
  sim = jax.jit(jax.vmap(lambda k: m.simulate(raw, k, 6000)))
  s, f = sim(jax.random.split(jax.random.key(3), 2))
  return train.Dataset(np.asarray(f), np.ones(f.shape[:2], bool), np.full(2, 6000), np.asarray(s))


def test_scf_rise_initialisation_is_near_the_truth(simulated_rise):
  # Two 100 s traces (tau 1 s, rise 0.1 s, alpha 4, baseline 0, 1 Hz); the assumed rate is the
  # true one. Over seeds 3-5 (6 traces) the estimates ranged tau 0.73-1.21 s, tau_rise
  # 0.029-0.101 s (100 s is short for the rise: biased low), alpha 3.92-4.39, sigma 0.99-1.02; the
  # 20th-percentile baseline sits 1.3-2.0 above the true 0 (calcium rarely decays fully at 1 Hz).
  m = models.make_model("scf_rise", frame_rate=60.0)
  c = _config(model="scf_rise", init_rate=1.0)
  phys = jax.vmap(m.constrain)(train.initial_generative_params(m, simulated_rise, c))
  assert np.all(np.abs(np.asarray(phys["tau"]) - 1.0) < 0.35)
  assert np.all((np.asarray(phys["tau_rise"]) > 0.02) & (np.asarray(phys["tau_rise"]) < 0.15))
  assert np.all(np.abs(np.asarray(phys["alpha"]) / 4.0 - 1) < 0.15)
  assert np.all(np.abs(np.asarray(phys["sigma"]) - 1.0) < 0.05)
  assert np.all((np.asarray(phys["beta"]) > 0.0) & (np.asarray(phys["beta"]) < 2.5))
  np.testing.assert_allclose(phys["rate"], 1.0, rtol=1e-5)
  off = jax.vmap(m.constrain)(train.initial_generative_params(
      m, simulated_rise, _config(model="scf_rise", init_from_data=False, init_tau_rise=0.2)))
  np.testing.assert_allclose(off["tau_rise"], 0.2, rtol=1e-5)
  np.testing.assert_allclose(off["alpha"], 2.0, rtol=1e-5)


def test_pretraining_on_simulated_traces_then_vimco(simulated_rise):
  # The first pretrain_steps steps fit the network to traces simulated from the cells' initial
  # models (generative parameters untouched, no bound); then the VIMCO bound takes over.
  c = _config(model="scf_rise", pretrain_steps=40, steps_per_chunk=40, features=(8, 8),
              snippet_frames=80, buffer_frames=10, num_samples=4, learning_rate=1e-2)
  trainer = train.make_trainer(c, simulated_rise)
  state0 = trainer.init(jax.random.key(0))
  chunk = jax.jit(trainer.chunk)
  pre, m1 = chunk(state0)
  ce, bound = np.asarray(m1["simulated_cross_entropy_per_frame"]), np.asarray(m1["bound_per_frame"])
  assert np.all(np.isfinite(ce)) and np.all(np.isnan(bound))
  assert ce[-10:].mean() < 0.5 * ce[:5].mean()
  for k in state0.generative_params:  # Pretraining leaves the generative model alone.
    np.testing.assert_array_equal(pre.generative_params[k], state0.generative_params[k])
  # After 40 steps on simulated traces the network finds spikes in the held traces (per-frame
  # correlation 0.24 with this seed), far above the untrained network.
  corr0, corr = _corr(trainer, state0, simulated_rise), _corr(trainer, pre, simulated_rise)
  assert corr > 0.2 and corr > corr0 + 0.1, (corr0, corr)
  post, m2 = chunk(pre)  # Steps 40-79: the bound.
  assert np.all(np.isnan(np.asarray(m2["simulated_cross_entropy_per_frame"])))
  assert np.all(np.isfinite(np.asarray(m2["bound_per_frame"])))
  assert int(post.step) == 80
  assert any(float(jnp.max(jnp.abs(post.generative_params[k] - pre.generative_params[k]))) > 0
             for k in pre.generative_params)


def _hand_snippet():
  # One 12-frame window (2 buffer frames each side, one NaN frame masked), spikes at 3 bins.
  f = np.linspace(-1.0, 2.0, 12).astype(np.float32)[:, None]
  mask = np.zeros(12, bool)
  mask[2:10] = True
  mask[5] = False  # F = 7 frames in the likelihood, W = 12 frames in the window.
  s = np.zeros((12, 1), np.float32)
  s[[3, 6, 7], 0] = 1.0
  return {"fluorescence": jnp.asarray(f), "mask": jnp.asarray(mask), "spikes": jnp.asarray(s),
          "offset": 0, "cell": 0}


def test_combined_loss_is_the_documented_per_frame_sum():
  # loss = wu * (-bound) / F + ws * (-log q(s|f)) / W [- log p(f, s) / F with generative_fit
  # "labels"], F = 7 likelihood frames, W = 12 window frames; recomputed here from the parts.
  m = models.make_model("scf", frame_rate=60.0)
  c = _config(features=(4,), kernel_size=(3,), num_samples=8, unsupervised_weight=0.7,
              supervised_weight=2.5)
  rec = train.build_recognition(c, m)
  snip = _hand_snippet()
  rparams = rec.init(jax.random.key(0), snip["fluorescence"])
  gparams = m.init(tau=0.5, alpha=2.0, beta=0.1, sigma=1.3, rate=2.0)
  key = jax.random.key(5)
  _, samples, log_q = rec.sample(rparams, snip["fluorescence"], key, 8)
  log_p = jax.vmap(lambda s: m.log_joint(gparams, s, snip["fluorescence"], snip["mask"]))(samples)
  bound = float(jax.nn.logsumexp(log_p - log_q) - np.log(8))
  log_q_true = float(rec.log_prob(rparams, snip["fluorescence"], snip["spikes"]))
  joint = float(m.log_joint(gparams, snip["spikes"], snip["fluorescence"], snip["mask"]))
  expected = 0.7 * -bound / 7 + 2.5 * -log_q_true / 12
  loss, metrics = train.make_losses(m, rec, c)(rparams, gparams, snip, key)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(metrics["bound_per_frame"]), bound / 7, rtol=1e-5)
  np.testing.assert_allclose(float(metrics["cross_entropy_per_frame"]), -log_q_true / 12,
                             rtol=1e-5)
  c.generative_fit = "labels"
  loss_fn = train.make_losses(m, rec, c)
  loss, metrics = loss_fn(rparams, gparams, snip, key)
  np.testing.assert_allclose(float(loss), expected - joint / 7, rtol=1e-5)
  np.testing.assert_allclose(float(metrics["labelled_log_joint_per_frame"]), joint / 7, rtol=1e-5)
  # With "labels" the generative gradient is that of -log p(f, s_true) / F alone: the bound's
  # does not reach the model (it does under the default "bound").
  g = jax.grad(lambda gp: loss_fn(rparams, gp, snip, key)[0])(gparams)
  g_ref = jax.grad(lambda gp: -m.log_joint(gp, snip["spikes"], snip["fluorescence"],
                                           snip["mask"]) / 7)(gparams)
  for k in g_ref:
    np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-5, atol=1e-7)
  c.generative_fit = "bound"
  g_bound = jax.grad(lambda gp: train.make_losses(m, rec, c)(rparams, gp, snip, key)[0])(gparams)
  assert float(jnp.abs(g_bound["tau"] - g_ref["tau"])) > 1e-4
  c.generative_fit = "labelled"
  with pytest.raises(ValueError, match="config.generative_fit must be 'bound' or 'labels'"):
    train.make_losses(m, rec, c)


def test_labels_warm_start_fits_both_parts_to_the_spikes(simulated):
  # pretrain_source "labels": the first steps use the labels (cross-entropy for the network, the
  # labelled log-joint for the model), with no bound; then the bound joins.
  c = _config(supervised_weight=1.0, generative_fit="labels", pretrain_source="labels",
              pretrain_steps=10, batch_size=2, num_samples=4, features=(8,), kernel_size=(9,))
  trainer = train.make_trainer(c, simulated)
  state0 = trainer.init(jax.random.key(0))
  chunk = jax.jit(trainer.chunk)
  pre, m1 = chunk(state0)
  assert np.all(np.isnan(np.asarray(m1["bound_per_frame"])))
  assert np.all(np.isfinite(np.asarray(m1["cross_entropy_per_frame"])))
  assert np.all(np.isfinite(np.asarray(m1["labelled_log_joint_per_frame"])))
  assert "simulated_cross_entropy_per_frame" not in m1
  assert any(float(jnp.max(jnp.abs(pre.generative_params[k] - state0.generative_params[k]))) > 0
             for k in pre.generative_params)
  _, m2 = chunk(pre)
  assert np.all(np.isfinite(np.asarray(m2["bound_per_frame"])))
  with pytest.raises(ValueError, match="config.pretrain_source must be"):
    train.make_trainer(_config(pretrain_source="data"), simulated)
  with pytest.raises(ValueError, match="need dataset.spikes"):
    train.make_trainer(_config(generative_fit="labels"), simulated._replace(spikes=None))


def test_bound_ramp_schedule_values():
  # Learning rate 1e-2, warm start of 200 steps, ramp of 100: full before step 200, then
  # 1e-2 * (count - 199) / 100 until step 299, full after.
  sched = train.bound_ramp_schedule(1e-2, 200, 100)
  for count, lr in ((0, 1e-2), (199, 1e-2), (200, 1e-4), (249, 5e-3), (298, 9.9e-3),
                    (299, 1e-2), (5000, 1e-2)):
    np.testing.assert_allclose(float(sched(jnp.asarray(count))), lr, rtol=1e-6, err_msg=str(count))
  np.testing.assert_allclose(float(train.bound_ramp_schedule(3e-3, 0, 0)(7)), 3e-3, rtol=1e-7)
  with pytest.raises(ValueError, match="config.bound_ramp_steps must be >= 0"):
    train.make_trainer(_config(bound_ramp_steps=-1), _small_dataset())


def _small_dataset():
  m = models.make_model("scf_rise", frame_rate=60.0)
  raw = m.init(tau=1.0, tau_rise=0.1, alpha=4.0, beta=0.0, sigma=1.0, rate=1.0)
  s, f = jax.vmap(lambda k: m.simulate(raw, k, 400))(jax.random.split(jax.random.key(5), 1))
  return train.Dataset(np.asarray(f), np.ones(f.shape[:2], bool), np.full(1, 400), np.asarray(s))


def test_bound_ramp_scales_the_first_bound_step():
  # Warm start of 3 steps on simulated traces (the generative model gets zero gradients), then the
  # bound with a ramp of 10 steps: at step 3 the generative learning rate is 1e-2 / 10. Adam's
  # first non-zero update of a parameter with gradient g at count 4 is lr * m_hat / sqrt(v_hat) =
  # lr * (0.1 / (1 - 0.9^4)) / sqrt(0.001 / (1 - 0.999^4)) = lr * 0.58113 in magnitude, whatever g
  # (and the clip) is: 5.8113e-4 for every raw generative parameter of the one cell, 5.8113e-3
  # without the ramp.
  ds = _small_dataset()
  expected = 0.1 / (1 - 0.9 ** 4) / np.sqrt(0.001 / (1 - 0.999 ** 4))
  for ramp, lr in ((10, 1e-3), (0, 1e-2)):
    c = _config(model="scf_rise", pretrain_steps=3, bound_ramp_steps=ramp, features=(8, 8),
                snippet_frames=80, buffer_frames=10, num_samples=4, generative_learning_rate=1e-2)
    trainer = train.make_trainer(c, ds)
    step = jax.jit(trainer.step)
    state = trainer.init(jax.random.key(0))
    for _ in range(3):
      state, _ = step(state)
    new, _ = step(state)
    for k in state.generative_params:
      delta = np.abs(np.asarray(new.generative_params[k] - state.generative_params[k]))
      np.testing.assert_allclose(delta, lr * expected, rtol=2e-3, err_msg=f"{k}, ramp {ramp}")


def test_fixed_generative_parameters_stay_at_their_initial_values():
  ds = _small_dataset()
  c = _config(model="scf_rise", fixed_generative=("sigma",), features=(8, 8), snippet_frames=80,
              buffer_frames=10, num_samples=4, steps_per_chunk=3)
  trainer = train.make_trainer(c, ds)
  state = trainer.init(jax.random.key(0))
  new, _ = jax.jit(trainer.chunk)(state)
  np.testing.assert_array_equal(new.generative_params["sigma"], state.generative_params["sigma"])
  assert all(float(jnp.max(jnp.abs(new.generative_params[k] - state.generative_params[k]))) > 0
             for k in state.generative_params if k != "sigma")
  with pytest.raises(ValueError, match="config.fixed_generative must name parameters of scf_rise"):
    train.make_trainer(_config(model="scf_rise", fixed_generative=("noise",)), ds)


def test_variant_configs():
  base = _config(pretrain_steps=20)
  combined = {"unsupervised_weight": 1e-3, "generative_fit": "labels", "pretrain_source": "labels"}
  unsupervised = {"bound_ramp_steps": 50, "fixed_generative": ("sigma",)}
  got = {v: train.variant_config(base, v, total_steps=60, combined=combined,
                                 unsupervised=unsupervised) for v in train.VARIANTS}
  weights = {v: (c.unsupervised_weight, c.supervised_weight, c.pretrain_steps)
             for v, c in got.items()}
  assert weights == {"unsupervised": (1.0, 0.0, 20), "simulated": (1.0, 0.0, 60),
                     "supervised": (0.0, 1.0, 0), "combined": (1e-3, 1.0, 20)}
  assert got["combined"].generative_fit == "labels" and got["combined"].pretrain_source == "labels"
  assert got["unsupervised"].bound_ramp_steps == 50
  assert tuple(got["unsupervised"].fixed_generative) == ("sigma",)
  # Overrides reach only their own variant; the base config is not modified.
  assert got["supervised"].bound_ramp_steps == 0 and got["simulated"].generative_fit == "bound"
  assert base.pretrain_steps == 20 and base.supervised_weight == 0.0
  assert train.variant_config(base, "simulated").pretrain_steps == base.num_steps
  with pytest.raises(ValueError, match="variant must be one of"):
    train.variant_config(base, "semi")


def test_simulated_variant_keeps_the_initial_models(simulated):
  # Every step is the warm start on simulated traces: the network learns, the models stay.
  c = train.variant_config(_config(steps_per_chunk=5), "simulated", total_steps=10)
  trainer = train.make_trainer(c, simulated._replace(spikes=None))
  state0 = trainer.init(jax.random.key(0))
  state, _ = jax.jit(trainer.chunk)(state0)
  for a, b in zip(jax.tree.leaves(state.generative_params),
                  jax.tree.leaves(state0.generative_params)):
    np.testing.assert_array_equal(a, b)
  moved = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(state.recognition_params),
                                                 jax.tree.leaves(state0.recognition_params))]
  assert max(moved) > 0


def test_infer_refuses_a_short_trace_by_name():
  config = train.default_config()
  rec = train.build_recognition(config, train.build_model(config))
  params = rec.init(jax.random.key(0), np.zeros((30, 1)))
  with pytest.raises(ValueError, match="fluorescence: 10 frames is shorter than the network's "
                                       "receptive field of 25 frames"):
    train.infer(rec, params, np.zeros((10, 1)))
