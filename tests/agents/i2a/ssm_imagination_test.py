"""I2A on a state-space model (Buesing et al. 2018, Sec. 5): the SSM adapter's shapes and
stochasticity, the I2A network on latent imagined observations, and learning to query (its
gradient against an enumerated expectation, the distillation term off).

Slow (compiling the model and the network: 20-50 s each at load 9 on the shared 2 cores):
both outputs' shapes, the network on latents, the imagined log-probabilities; their fast
counterparts in the default suite: the sSSM rollout test (latent shapes, keys), the query
gradient and loss tests and the bad-input test."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.a2c import train as a2c_train
from agents.i2a import imagination as im
from agents.i2a import ssm_model
from latent_dynamics import env_models

OBS_SHAPE, NUM_ACTIONS = (4, 6, 3), 4
TINY_SSM = dict(embed_channels=4, state_channels=4, latent_channels=2, hidden=4,
                pool_features=4, decoder_channels=4, reward_hidden=4)
TINY = im.I2AConfig(depth=3, conv_features=(4,), kernel_sizes=(3,), strides=(1,),
                    hidden_size=8, encoder_features=(4,), encoder_kernel_sizes=(3,),
                    encoder_strides=(1,), lstm_size=4, rollout_features=(4,),
                    rollout_kernel_sizes=(3,), rollout_strides=(1,), rollout_hidden=8)


def _model(kind="sSSM", **kw):
  model = env_models.make_env_model(env_models.EnvModelConfig(kind=kind, **TINY_SSM, **kw),
                                    OBS_SHAPE, NUM_ACTIONS)
  return model, model.init(jax.random.key(0))


def _obs(key, n=2):
  tiles = jax.random.randint(key, (n,) + OBS_SHAPE[:2], 0, OBS_SHAPE[2])
  return jax.nn.one_hot(tiles, OBS_SHAPE[2])


@pytest.mark.slow   # 51 s at load 9 (two outputs compiled); fast counterpart: the next test
def test_adapter_shapes_and_initial_state_from_repeated_frame():
  model, params = _model()
  obs = _obs(jax.random.key(1))
  want = jax.jit(model.observe)(params, jnp.stack([obs] * 3, 1))
  for output, shape in (("latent", model.state_shape), ("probs", OBS_SHAPE)):
    env = ssm_model.SSMEnv(model, output)
    assert env.imagined_shape == tuple(shape)
    carry = jax.jit(env.carry)(obs, params)
    # s_0 is model.observe of (o_t, o_t, o_t).
    np.testing.assert_allclose(carry.env_state, want, rtol=1e-6)
    assert carry.obs.shape == (2,) + tuple(shape)
    img = jax.jit(lambda p, o, k, env=env: im.imagine(
        env, p, lambda x: jnp.zeros((x.shape[0], NUM_ACTIONS)), o, k, depth=3))(
            params, obs, jax.random.key(2))
    assert img.obs.shape == (2, NUM_ACTIONS, 3) + tuple(shape)
    assert img.reward.shape == (2, NUM_ACTIONS, 3)
    np.testing.assert_array_equal(img.action[:, :, 0], np.tile(np.arange(NUM_ACTIONS), (2, 1)))
    if output == "probs":
      np.testing.assert_allclose(jnp.sum(img.obs, -1), 1.0, rtol=1e-5)


def test_sssm_rollouts_differ_across_keys_and_repeat_with_one_key():
  model, params = _model()
  env = ssm_model.SSMEnv(model, "latent")
  obs = _obs(jax.random.key(1), 1)
  greedy = lambda x: jnp.zeros((x.shape[0], NUM_ACTIONS))  # noqa: E731
  run = jax.jit(lambda k: im.imagine(env, params, greedy, obs, k, 3, "greedy"))
  a, b, a2 = run(jax.random.key(3)), run(jax.random.key(4)), run(jax.random.key(3))
  assert a.obs.shape == (1, NUM_ACTIONS, 3) + tuple(model.state_shape)
  assert env.imagined_shape == tuple(model.state_shape) != OBS_SHAPE
  np.testing.assert_array_equal(a.action, b.action)   # greedy pi_hat: same actions
  assert float(jnp.max(jnp.abs(a.obs - b.obs))) > 1e-4   # z_t ~ prior differs
  np.testing.assert_array_equal(a.obs, a2.obs)
  # dSSM-DET is deterministic: keys do not matter.
  det_model, det_params = _model("dSSM-DET")
  det = ssm_model.SSMEnv(det_model, "latent")
  run_det = jax.jit(lambda k: im.imagine(det, det_params, greedy, obs, k, 3, "greedy"))
  x, y = run_det(jax.random.key(3)), run_det(jax.random.key(4))
  np.testing.assert_allclose(x.obs, y.obs, rtol=1e-6)


@pytest.mark.slow   # 34 s at load 9 (the I2A network on latents compiled twice)
def test_i2a_network_on_latent_imagination():
  model, params = _model()
  env = ssm_model.SSMEnv(model, "latent")
  net = im.make_i2a_network(TINY, OBS_SHAPE, NUM_ACTIONS, env)
  obs = _obs(jax.random.key(5), 3)
  p = jax.jit(net.init)(jax.random.key(6), obs, params, jax.random.key(7))
  out = jax.jit(net.apply)(p, obs, params, jax.random.key(7))
  assert out.logits.shape == (3, NUM_ACTIONS) and out.value.shape == (3,)
  assert out.imagination.obs.shape == (3, NUM_ACTIONS, 3) + tuple(model.state_shape)
  # pi_hat reads s_0 at the real observation: its logits equal RolloutPolicy on observe(o,o,o).
  pi_hat = im.RolloutPolicy(NUM_ACTIONS, (4,), (3,), (1,), 8)
  s0 = jax.jit(env.policy_input)(obs, params)
  want = jax.jit(pi_hat.apply)({"params": p["params"]["rollout_policy"]}, s0)
  np.testing.assert_allclose(out.rollout_logits, want, rtol=1e-5, atol=1e-6)
  # Reused imagination gives the same output (the trainer's update path).
  again = jax.jit(lambda p, m, i: net.apply(p, obs, m, None, i))(p, params, out.imagination)
  np.testing.assert_allclose(again.logits, out.logits, rtol=1e-5, atol=1e-6)


@pytest.mark.slow   # 20 s at load 9; fast counterparts: the two query tests below
def test_imagined_log_prob_is_pi_hat_at_the_imagined_inputs():
  model, params = _model()
  env = ssm_model.SSMEnv(model, "latent")
  net = im.make_i2a_network(TINY.replace(rollout_training="query"), OBS_SHAPE, NUM_ACTIONS, env)
  obs = _obs(jax.random.key(5), 2)
  p = jax.jit(net.init)(jax.random.key(6), obs, params, jax.random.key(7))
  out = jax.jit(net.apply)(p, obs, params, jax.random.key(8))
  assert out.imagined_log_prob.shape == (2, NUM_ACTIONS, 2)
  pi_hat = im.RolloutPolicy(NUM_ACTIONS, (4,), (3,), (1,), 8)
  rp = {"params": p["params"]["rollout_policy"]}
  for k in (1, 2):
    x = out.imagination.obs[:, :, k - 1].reshape((-1,) + tuple(model.state_shape))
    lp = jax.nn.log_softmax(jax.jit(pi_hat.apply)(rp, x), -1).reshape(2, NUM_ACTIONS, NUM_ACTIONS)
    a = out.imagination.action[:, :, k]
    want = jnp.take_along_axis(lp, a[..., None], -1)[..., 0]
    np.testing.assert_allclose(out.imagined_log_prob[:, :, k - 1], want, rtol=1e-5, atol=1e-6)
  # The default ("distill") leaves them at 0 (no extra pi_hat pass).
  dnet = im.make_i2a_network(TINY, OBS_SHAPE, NUM_ACTIONS, env)
  dout = jax.jit(dnet.apply)(p, obs, params, jax.random.key(8))
  np.testing.assert_array_equal(dout.imagined_log_prob, 0.0)


def test_query_gradient_equals_enumerated_expectation():
  # One observation, pi_hat a free categorical theta over 3 actions, two sampled steps (a1, a2)
  # and an advantage f(a1, a2). Averaging the estimator's gradient over all 9 pairs with
  # weights pi(a1) pi(a2) must give the exact gradient of -E[f] = -sum pi(a1) pi(a2) f.
  theta = jnp.array([0.3, -0.5, 0.9])
  f = jnp.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0], [2.0, 1.5, -0.5]])
  pi = jax.nn.softmax(theta)

  def estimate(th, a1, a2):
    lp = jax.nn.log_softmax(th)
    log_prob = jnp.stack([lp[a1], lp[a2]]).reshape(1, 1, 1, 2)    # [T, B, A, tau - 1]
    return im.query_loss(log_prob, f[a1, a2].reshape(1, 1))

  expected = sum(pi[i] * pi[j] * jax.grad(estimate)(theta, i, j)
                 for i in range(3) for j in range(3))
  exact = jax.grad(lambda th: -jnp.einsum("i,j,ij->", jax.nn.softmax(th),
                                          jax.nn.softmax(th), f))(theta)
  np.testing.assert_allclose(expected, exact, rtol=1e-5, atol=1e-7)
  assert float(estimate(theta, 0, 1)) == 0.0   # the surrogate's value is 0


def test_query_mode_drops_the_distillation_term():
  t, b, a = 3, 2, 4
  k = jax.random.split(jax.random.key(0), 4)
  logits = jax.random.normal(k[0], (t, b, a))
  rollout_logits = jax.random.normal(k[1], (t, b, a))
  values = jax.random.normal(k[2], (t, b))
  lp = jax.random.normal(k[3], (t, b, a, 2))
  action = jnp.zeros((t, b), jnp.int32)
  reward, discount = jnp.ones((t, b)), jnp.ones((t, b))
  trunc = jnp.zeros((t, b), bool)
  cfg = a2c_train.A2CConfig()

  def total(rl, lp, mode):
    return im.i2a_loss(logits, values, rl, jnp.zeros(b), action, reward, discount, trunc, cfg,
                       1.0, rollout_training=mode, imagined_log_prob=lp)[0]

  grad = jax.jit(jax.grad(total, argnums=(0, 1)), static_argnums=2)
  g_rl_q, g_lp_q = grad(rollout_logits, lp, "query")
  g_rl_d, g_lp_d = grad(rollout_logits, lp, "distill")
  np.testing.assert_array_equal(g_rl_q, 0.0)      # no distillation gradient with query on
  np.testing.assert_array_equal(g_lp_d, 0.0)      # no query gradient with distillation
  assert float(jnp.max(jnp.abs(g_rl_d))) > 0 and float(jnp.max(jnp.abs(g_lp_q))) > 0
  # The query gradient is -sg(A) / (T B) per log-prob, A the A2C advantage G - V.
  from agents.a2c import losses  # noqa: PLC0415
  adv = losses.return_targets(reward, discount, trunc, values, jnp.zeros(b), cfg) - values
  np.testing.assert_allclose(g_lp_q, jnp.broadcast_to((-adv / (t * b))[..., None, None],
                                                       lp.shape), rtol=1e-5, atol=1e-7)


def test_bad_input_names_it():
  model, params = _model()
  with pytest.raises(ValueError, match="output must be one of"):
    ssm_model.SSMEnv(model, "frames")
  jumpy, _ = _model(jump=2)
  with pytest.raises(ValueError, match="jumpy model"):
    ssm_model.SSMEnv(jumpy, "latent")
  env = ssm_model.SSMEnv(model, "latent")
  with pytest.raises(ValueError, match="obs must be"):
    env.carry(jnp.zeros((2, 5, 6, 3)), params)
  with pytest.raises(ValueError, match="do not fit the SSM"):
    env.check_params(_model("dSSM-DET")[1])
  with pytest.raises(ValueError, match="rollout_actions='sample'"):
    im.check_config(TINY.replace(rollout_training="query", rollout_actions="greedy"))
  with pytest.raises(ValueError, match="config.rollout_training"):
    im.check_config(TINY.replace(rollout_training="reinforce"))


@pytest.mark.slow   # 145 s at load 7 (three trainers compiled); fast counterpart:
# test_query_mode_drops_the_distillation_term
def test_trainer_routes_the_query_term_to_pi_hat():
  # make_agent_trainer with an SSM: under "query" pi_hat's gradient comes from the query term
  # alone (zero with query_coef = 0: the distillation term is off), under "distill" from the
  # distillation term.
  import tiny_envs  # noqa: PLC0415

  from agents import a2c  # noqa: PLC0415
  from agents.i2a import train as tr  # noqa: PLC0415
  from envs import spaces  # noqa: PLC0415

  class GridChain(tiny_envs.Chain):
    def observation_space(self, params=None):
      return spaces.Box(0.0, 1.0, (1, self.length, 2), jnp.float32)

    def reset_env(self, key, params):
      obs, state = super().reset_env(key, params)
      return jax.nn.one_hot(obs.astype(jnp.int32), 2)[None], state

    def step_env(self, key, state, action, params):
      obs, state, r, term, trunc, info = super().step_env(key, state, action, params)
      return jax.nn.one_hot(obs.astype(jnp.int32), 2)[None], state, r, term, trunc, info

  env = GridChain(6)
  params = env.default_params.replace(max_steps=30)
  model = env_models.make_env_model(env_models.EnvModelConfig(kind="sSSM", **TINY_SSM),
                                    (1, 6, 2), env.action_space(params).num_values)
  ssm = ssm_model.SSMEnv(model, "latent")
  model_params = model.init(jax.random.key(0))
  small = a2c.default_config(num_envs=2, rollout_length=2, updates_per_chunk=1, num_chunks=1)
  net = TINY.replace(depth=2, encoder_strides=(1,))

  def pi_hat_grad(mode, coef):
    cfg = tr.AgentConfig(agent="i2a", a2c=small,
                         net=net.replace(rollout_training=mode, query_coef=coef))
    trainer = tr.make_agent_trainer(cfg, env, params, env_model=ssm, model_params=model_params)
    state = trainer.init(jax.random.key(1))
    carry, traj, k_boot, _ = jax.jit(trainer.collect)(state)
    g = jax.jit(jax.grad(lambda p: trainer.loss(p, traj._replace(info=None), carry.obs,
                                                k_boot)[0]))(state.params)
    return jax.tree.leaves(tr.rollout_policy_params(g))

  norm = lambda leaves: float(sum(jnp.sum(x ** 2) for x in leaves))  # noqa: E731
  assert norm(pi_hat_grad("query", 0.0)) == 0.0
  assert norm(pi_hat_grad("query", 1.0)) > 0.0
  assert norm(pi_hat_grad("distill", 1.0)) > 0.0
