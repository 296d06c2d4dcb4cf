"""The state-space environment models of `latent_dynamics.env_models` (Buesing et al. 2018):
the stochastic parts are stochastic, the posterior reads the observed frame, the deterministic
model's likelihood equals its rollout's, jumpy targets by hand, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latent_dynamics import env_models as em
from latent_dynamics.env_models import train
from latent_dynamics.env_models.imagination import LatentEnv

H, W, C, A = 5, 6, 3, 4
TINY = dict(embed_channels=8, state_channels=8, latent_channels=4, hidden=8, pool_features=8,
            decoder_channels=8, reward_hidden=4)


def tiny(kind="sSSM", jump=1):
  return em.make_env_model(em.EnvModelConfig(kind=kind, jump=jump, **TINY), (H, W, C), A)


def ball_data(key, n, t_len):
  """A ball (tile 1) at a uniformly random cell of an empty room (tile 0) in every frame, with
  random actions and rewards: each next frame is unpredictable, so a model must put its
  information in the posterior's latent."""
  k_pos, k_act, k_rew = jax.random.split(key, 3)
  pos = jax.random.randint(k_pos, (n, 3 + t_len), 0, H * W)
  tiles = jax.nn.one_hot(pos, H * W, dtype=jnp.int32).reshape(n, 3 + t_len, H, W)
  obs = jax.nn.one_hot(tiles, C, dtype=jnp.float32)
  action = jax.random.randint(k_act, (n, t_len), 0, A)
  reward = jax.random.bernoulli(k_rew, 0.3, (n, t_len)).astype(jnp.float32)
  return em.Sequences(obs, action, reward)


@pytest.fixture(scope="module")
def ssm():
  model = tiny("sSSM")
  return model, jax.jit(model.init)(jax.random.key(0))


@pytest.fixture(scope="module")
def det2():
  model = tiny("dSSM-DET", jump=2)
  return model, jax.jit(model.init)(jax.random.key(0))


def test_sssm_kl_nonzero_after_training(ssm):
  model, params0 = ssm
  trainer = train.make_trainer(model, train.TrainConfig(learning_rate=3e-3, batch_size=4,
                                                        steps_per_chunk=5))
  state = trainer.init(jax.random.key(1), params0)
  state, metrics = trainer.chunk(state, ball_data(jax.random.key(2), 64, 1))
  loss, kl = np.asarray(metrics["loss"]), np.asarray(metrics["kl"])
  assert np.all(np.isfinite(loss)) and int(state.steps) == 5
  # The KL of the last step's batch, in nats per model step (the public reimplementation's
  # deterministic "sSSM" has none). Measured 0.99 here (6.2 at the first step), falling as the
  # posterior tightens on the prior; a collapsed posterior gives < 1e-4.
  assert kl[-1] > 0.02, kl
  # The ELBO's pathwise gradient reached the posterior (it reads e_t, the observed frame).
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       params0["params"]["posterior_net"], state.params["params"]["posterior_net"])
  assert min(jax.tree.leaves(moved)) > 0


def test_two_rollouts_from_one_state_differ(ssm):
  model, params = ssm
  data = ball_data(jax.random.key(3), 2, 2)
  s0 = model.observe(params, data.obs[:, :3])
  imagine = jax.jit(model.imagine)
  _, r1 = imagine(params, s0, data.action, jax.random.key(4))
  _, r2 = imagine(params, s0, data.action, jax.random.key(5))
  _, r1_again = imagine(params, s0, data.action, jax.random.key(4))
  assert float(jnp.max(jnp.abs(r1.frame_logits - r2.frame_logits))) > 1e-3
  np.testing.assert_array_equal(np.asarray(r1.frame_logits), np.asarray(r1_again.frame_logits))


def test_posterior_reads_the_observed_frame(ssm):
  model, params = ssm
  data = ball_data(jax.random.key(6), 2, 1)
  other = data._replace(obs=data.obs.at[:, 3].set(jnp.roll(data.obs[:, 3], 2, axis=-2)))
  # Same key, same state, same action: only the observed o_1 differs.
  terms = jax.jit(model.terms)
  t1 = terms(params, data, jax.random.key(7))
  t2 = terms(params, other, jax.random.key(7))
  assert float(jnp.max(jnp.abs(t1.kl - t2.kl))) > 1e-4
  assert float(jnp.max(jnp.abs(t1.parts["frame"] - t2.parts["frame"]))) > 1e-3


def test_det_log_likelihood_equals_its_rollout(det2):
  # dSSM-DET has no latent: log p(o_{1:T}, r_{1:T}) is exact and equals the frame and reward
  # log-likelihoods of the open-loop rollout under the same actions (jump 2: o_2, o_4), and
  # its rollouts are deterministic (any key gives the same frames).
  model, params = det2
  data = ball_data(jax.random.key(8), 3, 4)
  ll = model.log_likelihood(params, data, jax.random.key(0))
  s0 = model.observe(params, data.obs[:, :3])
  imagine = jax.jit(model.imagine)
  _, out = imagine(params, s0, data.action, jax.random.key(0))
  _, out_other_key = imagine(params, s0, data.action, jax.random.key(1))
  np.testing.assert_array_equal(np.asarray(out.frame_logits),
                                np.asarray(out_other_key.frame_logits))
  frames = data.obs[:, jnp.array([4, 6])]
  rewards = data.reward.reshape(3, 2, 2).sum(-1)
  frame_ll = jnp.sum(jax.nn.log_softmax(out.frame_logits) * frames, (2, 3, 4))     # [B, 2]
  want = (jnp.sum(frame_ll, 1)
          + jnp.sum(-0.5 * (rewards - out.reward) ** 2 - 0.5 * np.log(2 * np.pi), 1))
  np.testing.assert_allclose(np.asarray(ll), np.asarray(want), rtol=1e-5)
  # The frames-only prefix log-likelihoods: log p(o_2), log p(o_2, o_4).
  prefix = model.frame_log_likelihood(params, data, jax.random.key(0), 4)
  np.testing.assert_allclose(np.asarray(prefix), np.asarray(jnp.cumsum(frame_ll, 1)), rtol=1e-5)


def test_jumpy_targets_by_hand():
  obs = jnp.arange(2 * 7, dtype=jnp.float32).reshape(2, 7, 1, 1, 1)   # frame id per frame
  action = jnp.array([[0, 1, 2, 3], [3, 2, 1, 0]])
  reward = jnp.array([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]])
  action_k, frame, rsum = em.jumpy_targets(em.Sequences(obs, action, reward), 2)
  np.testing.assert_array_equal(np.asarray(action_k), [[[0, 1], [2, 3]], [[3, 2], [1, 0]]])
  np.testing.assert_array_equal(np.asarray(frame[..., 0, 0, 0]), [[4, 6], [11, 13]])
  np.testing.assert_array_equal(np.asarray(rsum), [[3.0, 7.0], [0.5, 1.0]])
  _, frame4, rsum4 = em.jumpy_targets(em.Sequences(obs, action, reward), 4)
  np.testing.assert_array_equal(np.asarray(rsum4), [[10.0], [1.5]])
  np.testing.assert_array_equal(np.asarray(frame4[..., 0, 0, 0]), [[6], [13]])


def test_jumpy_rollout_one_step_per_k_actions(det2):
  model, params = det2
  data = ball_data(jax.random.key(9), 3, 4)
  s0 = model.observe(params, data.obs[:, :3])
  imagine = jax.jit(model.imagine)
  s, out = imagine(params, s0, data.action, jax.random.key(1))
  assert out.frame_logits.shape == (3, 2, H, W, C) and out.reward.shape == (3, 2)
  assert s.shape == (3,) + model.state_shape == (3, 3, 3, 8)
  # The second model step reads actions 2 and 3 together: changing action 3 changes it only.
  _, out2 = imagine(params, s0, data.action.at[:, 3].set((data.action[:, 3] + 1) % A),
                    jax.random.key(1))
  np.testing.assert_array_equal(np.asarray(out.frame_logits[:, 0]),
                                np.asarray(out2.frame_logits[:, 0]))
  assert float(jnp.max(jnp.abs(out.frame_logits[:, 1] - out2.frame_logits[:, 1]))) > 1e-5


def test_bad_input_errors(ssm, det2):
  model, params = ssm
  data = ball_data(jax.random.key(10), 2, 2)
  with pytest.raises(ValueError, match="context must hold at least 3 frames"):
    model.observe(params, data.obs[:, :2])
  with pytest.raises(ValueError, match=r"context must have shape .*obs_shape"):
    model.observe(params, jnp.ones((2, 3, H, W + 1, C)))
  with pytest.raises(ValueError, match=r"batch.obs must have shape"):
    model.loss(params, data._replace(obs=data.obs[..., :2]), jax.random.key(0))
  with pytest.raises(ValueError, match=r"batch.action must be in \[0, 4\)"):
    model.loss(params, data._replace(action=data.action.at[0, 0].set(4)), jax.random.key(0))
  s0 = model.observe(params, data.obs[:, :3])
  with pytest.raises(ValueError, match=r"actions must be in \[0, 4\)"):
    model.imagine(params, s0, -jnp.ones((2, 2), jnp.int32), jax.random.key(0))
  with pytest.raises(ValueError, match="config.jump must be a positive integer"):
    tiny(jump=0)
  with pytest.raises(ValueError, match="config.kind must be one of"):
    tiny(kind="RAR")
  jumpy, p_jumpy = det2
  with pytest.raises(ValueError, match="T = 3 must be a multiple of the jump size k = 2"):
    jumpy.imagine(p_jumpy, s0, jnp.zeros((2, 3), jnp.int32), jax.random.key(0))
  with pytest.raises(ValueError, match="T = 3 must be a multiple of the jump size k = 2"):
    jumpy.check_batch(ball_data(jax.random.key(0), 2, 3))
  with pytest.raises(ValueError, match="num_samples must be a positive integer"):
    model.log_likelihood(params, data, jax.random.key(0), num_samples=0)


def test_latent_env_steps_as_imagine(det2):
  # The gymnax-signature adapter, one environment per call under vmap, reproduces the batched
  # rollout of the deterministic jumpy model: states, rewards and decoded frames.
  model, params = det2
  data = ball_data(jax.random.key(11), 3, 4)
  s0 = model.observe(params, data.obs[:, :3])
  _, out = jax.jit(model.imagine)(params, s0, data.action, jax.random.key(0))
  latent, probs = LatentEnv(model), LatentEnv(model, "probs")
  step = jax.jit(jax.vmap(latent.step, in_axes=(None, 0, 0, None)))
  step_p = jax.jit(jax.vmap(probs.step, in_axes=(None, 0, 0, None)))
  s = s0
  for j in range(2):
    action_k = data.action[:, 2 * j:2 * j + 2]
    obs, s_next, reward, term, trunc, _ = step(jax.random.key(0), s, action_k, params)
    frame = step_p(jax.random.key(0), s, action_k, params)[0]
    s = s_next
    np.testing.assert_allclose(np.asarray(obs), np.asarray(out.state[:, j]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(reward), np.asarray(out.reward[:, j]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(frame),
                               np.asarray(jax.nn.softmax(out.frame_logits[:, j])), atol=1e-5)
    assert not bool(term.any()) and not bool(trunc.any())
  with pytest.raises(ValueError, match="output must be one of"):
    LatentEnv(model, "pixels")


def test_frame_likelihoods_by_hand():
  # Zero logits on two tiles of C = 3 planes: (1, 0, 0) one-hot and (0, 0, 0) all off (a
  # MiniPacman floor cell). Categorical: log(1/3) and 0 (the all-off tile is never scored);
  # Bernoulli: every plane log(1/2), so 3 log(1/2) per tile.
  logits = jnp.zeros((2, C))
  frame = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
  cat = np.asarray(em.models.frame_log_prob(logits, frame, "categorical").sum(-1))
  ber = np.asarray(em.models.frame_log_prob(logits, frame, "bernoulli").sum(-1))
  np.testing.assert_allclose(cat, [np.log(1 / 3), 0.0], rtol=1e-6)
  np.testing.assert_allclose(ber, [3 * np.log(0.5)] * 2, rtol=1e-6)
  # A logit of 2 on plane 0: sigmoid(2) when on, 1 - sigmoid(2) when off.
  one = jnp.array([[2.0, 0.0, 0.0]])
  sig = 1 / (1 + np.exp(-2.0))
  np.testing.assert_allclose(
      np.asarray(em.models.frame_log_prob(one, frame[:1], "bernoulli")[0]),
      [np.log(sig), np.log(0.5), np.log(0.5)], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(em.models.frame_probs(one, "bernoulli")[0]),
                             [sig, 0.5, 0.5], rtol=1e-6)


def test_bernoulli_det_log_likelihood_equals_its_rollout():
  # As the categorical case above: dSSM-DET's exact log-likelihood with a Bernoulli per plane
  # equals the rollout's Bernoulli frame terms plus the reward terms, and LatentEnv's "probs"
  # are the sigmoids of the rollout's logits.
  model = em.make_env_model(em.EnvModelConfig(kind="dSSM-DET", frame_likelihood="bernoulli",
                                              **TINY), (H, W, C), A)
  params = jax.jit(model.init)(jax.random.key(0))
  data = ball_data(jax.random.key(12), 3, 2)
  data = data._replace(obs=data.obs.at[:, :, 0, 0].set(0.0))   # an all-off tile in every frame
  ll = model.log_likelihood(params, data, jax.random.key(0))
  s0 = model.observe(params, data.obs[:, :3])
  _, out = jax.jit(model.imagine)(params, s0, data.action, jax.random.key(0))
  frames = data.obs[:, 3:]
  logits = out.frame_logits
  frame_ll = jnp.sum(frames * jax.nn.log_sigmoid(logits)
                     + (1 - frames) * jax.nn.log_sigmoid(-logits), (2, 3, 4))
  want = (jnp.sum(frame_ll, 1)
          + jnp.sum(-0.5 * (data.reward - out.reward) ** 2 - 0.5 * np.log(2 * np.pi), 1))
  np.testing.assert_allclose(np.asarray(ll), np.asarray(want), rtol=1e-5)
  probs = jax.vmap(LatentEnv(model, "probs").step, in_axes=(None, 0, 0, None))(
      jax.random.key(0), s0, data.action[:, :1], params)[0]
  np.testing.assert_allclose(np.asarray(probs), np.asarray(jax.nn.sigmoid(logits[:, 0])),
                             atol=1e-5)
  with pytest.raises(ValueError, match="config.frame_likelihood must be one of"):
    em.make_env_model(em.EnvModelConfig(frame_likelihood="gaussian", **TINY), (H, W, C), A)
  with pytest.raises(ValueError, match="config.train_conv must be one of"):
    em.make_env_model(em.EnvModelConfig(train_conv="cudnn", **TINY), (H, W, C), A)


@pytest.mark.slow
def test_elbo_lowerings_agree(ssm):
  # The ELBO with patches x kernel (train_conv="patches") equals XLA's convolution ("xla", the
  # default): one function, two lowerings, one set of params; loss and gradient agree. (Slow:
  # two ELBO gradients to compile; the fast counterpart is env_models_blocks_test's check that
  # both `Conv` lowerings equal `nn.Conv`.)
  model, params = ssm
  patches = em.make_env_model(em.EnvModelConfig(kind="sSSM", train_conv="patches", **TINY),
                              (H, W, C), A)
  data = ball_data(jax.random.key(13), 4, 2)
  key = jax.random.key(14)
  (l1, _), g1 = jax.value_and_grad(model.loss, has_aux=True)(params, data, key)
  (l2, _), g2 = jax.value_and_grad(patches.loss, has_aux=True)(params, data, key)
  np.testing.assert_allclose(float(l1), float(l2), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5), g1, g2)


def test_free_bits_clamp_the_kl_per_step_by_hand(ssm):
  """Free bits: the loss's KL of step t is max(mean_n KL_t, lambda). Hand-worked from the
  per-step terms of the same sample path: below lambda the loss is -log_lik + lambda and the
  KL has no gradient; above it the loss is the plain -ELBO; `LossInfo.kl` is the true KL."""
  _, params = ssm
  data = ball_data(jax.random.key(11), 6, 3)
  key = jax.random.key(12)
  plain = tiny("sSSM")
  out = jax.jit(plain.terms)(params, data, key)                # [T, N]
  kl_t = np.asarray(out.kl).mean(1)                            # batch mean per step
  ll = float(np.asarray(out.log_lik).mean())
  lam = float(np.median(kl_t))                                 # some steps below, some above
  assert np.any(kl_t < lam) and np.any(kl_t > lam), kl_t
  free = em.make_env_model(em.EnvModelConfig(kind="sSSM", free_nats=lam, **TINY), (H, W, C), A)
  (loss0, info0), (loss1, info1) = (jax.jit(plain.loss)(params, data, key),
                                    jax.jit(free.loss)(params, data, key))
  np.testing.assert_allclose(float(loss0), -ll + kl_t.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(loss1), -ll + np.maximum(kl_t, lam).mean(), rtol=1e-5)
  np.testing.assert_allclose(float(info1.kl), float(info0.kl), rtol=1e-6)
  np.testing.assert_allclose(float(info1.elbo_per_step), float(info0.elbo_per_step), rtol=1e-6)
  # With lambda above every step's KL, the gradient is that of -log_lik alone:
  # the pathwise gradient of the mean of -log p(o_t, r_t | s_t, z_t) over the same path.
  huge = em.make_env_model(em.EnvModelConfig(kind="sSSM", free_nats=1e4, **TINY), (H, W, C), A)
  g_huge = jax.jit(jax.grad(lambda p: huge.loss(p, data, key)[0]))(params)
  g_ref = jax.jit(jax.grad(lambda p: -jnp.mean(plain.terms(p, data, key).log_lik)))(params)
  for a, b in zip(jax.tree.leaves(g_huge), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match="config.free_nats must be a number >= 0"):
    em.make_env_model(em.EnvModelConfig(kind="sSSM", free_nats=-1.0, **TINY), (H, W, C), A)
