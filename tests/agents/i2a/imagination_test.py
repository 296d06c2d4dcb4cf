"""I2A's imagination (Weber et al. 2017, Sec. 3, App. B): the distillation loss and its gradient
by hand, imagination on a hand model (first action fixed, pi_hat's later actions, batch order),
jit imagination vs chaining `predict` by hand, the encoder's reverse order, the I2A network's
gradients (model and pi_hat frozen), the copy-model variant, and bad input."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import i2a
from agents.i2a import imagination as im

TINY_MODEL = i2a.EnvModelConfig(width=8, blocks=((4, 4, 8),), large_kernel=3, frame_hidden=8,
                                reward_hidden=4)
TINY = i2a.I2AConfig(depth=2, conv_features=(4,), kernel_sizes=(3,), strides=(1,),
                     hidden_size=8, encoder_features=(4,), encoder_kernel_sizes=(3,),
                     encoder_strides=(2,), lstm_size=4, rollout_features=(4,),
                     rollout_kernel_sizes=(3,), rollout_strides=(1,), rollout_hidden=8)
OBS_SHAPE, NUM_ACTIONS, NUM_TILES = (3, 3, 5), 4, 5
REWARDS = (0.5, 1.5, 2.5, 3.5)


# ------------------------------------------------------------------------------ distillation
def test_distillation_loss_by_hand():
  pi = jnp.array([[0.0, math.log(3.0)]])            # pi = (1/4, 3/4)
  # pi_hat uniform: -(1/4 + 3/4) log(1/2) = log 2.
  np.testing.assert_allclose(i2a.distillation_loss(pi, jnp.zeros((1, 2))), math.log(2.0),
                             rtol=1e-6)
  # pi_hat = pi: the cross-entropy is pi's entropy, -(1/4 log 1/4 + 3/4 log 3/4) = 0.562335.
  np.testing.assert_allclose(i2a.distillation_loss(pi, pi), 0.5623351446, rtol=1e-6)
  # Mean over a batch of both rows.
  both = i2a.distillation_loss(jnp.concatenate([pi, pi]), jnp.array([[0.0, 0.0], pi[0]]))
  np.testing.assert_allclose(both, (math.log(2.0) + 0.5623351446) / 2, rtol=1e-6)


def test_distillation_gradient_moves_pi_hat_toward_pi():
  k1, k2 = jax.random.split(jax.random.key(0))
  pi_logits = 2.0 * jax.random.normal(k1, (5, 3))
  hat_logits = 2.0 * jax.random.normal(k2, (5, 3))
  g_pi, g_hat = jax.grad(i2a.distillation_loss, argnums=(0, 1))(pi_logits, hat_logits)
  pi, hat = jax.nn.softmax(pi_logits), jax.nn.softmax(hat_logits)
  np.testing.assert_allclose(g_hat, (hat - pi) / 5, atol=1e-6)   # (pi_hat - pi), batch mean
  np.testing.assert_array_equal(g_pi, np.zeros((5, 3)))          # stop-gradient on pi
  # 2-action case by hand: pi = (1/4, 3/4), pi_hat uniform -> gradient (1/4, -1/4).
  g = jax.grad(i2a.distillation_loss, argnums=1)(jnp.array([[0.0, math.log(3.0)]]),
                                                 jnp.zeros((1, 2)))
  np.testing.assert_allclose(g, [[0.25, -0.25]], atol=1e-7)

  def kl(h):  # KL(pi || pi_hat) per row
    return jnp.sum(pi * (jnp.log(pi) - jax.nn.log_softmax(h)), -1)
  after = hat_logits - 0.5 * 5 * g_hat
  assert np.all(np.asarray(kl(after)) < np.asarray(kl(hat_logits)))


def test_i2a_loss_is_the_a2c_loss_plus_the_distillation_term():
  from agents import a2c
  t, b = 4, 3
  ks = jax.random.split(jax.random.key(12), 6)
  logits, hat = jax.random.normal(ks[0], (t, b, 3)), jax.random.normal(ks[1], (t, b, 3))
  values, boot = jax.random.normal(ks[2], (t, b)), jax.random.normal(ks[3], (b,))
  action = jax.random.randint(ks[4], (t, b), 0, 3)
  reward = jax.random.normal(ks[5], (t, b))
  discount, truncated = jnp.ones((t, b)), jnp.zeros((t, b), bool)
  config = a2c.default_config()
  loss_fn = lambda h: i2a.i2a_loss(logits, values, h, boot, action, reward, discount,  # noqa: E731
                                   truncated, config, 0.3)
  (loss, (_, dist)), g = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(hat)
  want = jax.jit(lambda: a2c.a2c_loss(logits, values, boot, action, reward, discount, truncated,
                                      config)[0])()
  np.testing.assert_allclose(loss, want + 0.3 * i2a.distillation_loss(logits, hat), rtol=1e-5)
  np.testing.assert_allclose(dist, i2a.distillation_loss(logits, hat), rtol=1e-6)
  # pi_hat's logits get only the distillation gradient, 0.3 (pi_hat - pi) / (T B).
  np.testing.assert_allclose(g, 0.3 * (jax.nn.softmax(hat) - jax.nn.softmax(logits)) / (t * b),
                             atol=1e-6)


# ------------------------------------------------------------------------------ hand model
def _hand_model() -> i2a.EnvModelFns:
  """All tiles of the next frame are `(t + a + 1) % C` where `t` is the tile at (0, 0); the
  reward is `REWARDS[a]`. Logits of 50 make every argmax and draw certain."""
  def apply(params, obs, action):
    del params
    t = jnp.argmax(obs[..., 0, 0, :], -1)
    nxt = jax.nn.one_hot((t + action + 1) % NUM_TILES, NUM_TILES)
    frame = 50.0 * jnp.broadcast_to(nxt[..., None, None, :], obs.shape)
    return frame, 50.0 * jax.nn.one_hot(action, NUM_ACTIONS)
  spec = i2a.RewardSpec(REWARDS, lambda r, info=None: jnp.zeros(jnp.shape(r), jnp.int32))
  return i2a.EnvModelFns(None, apply, None, None, None, None, None, OBS_SHAPE, NUM_ACTIONS, spec)


def _hand_policy(obs):
  """pi_hat: action `t % A` for the tile `t` at (0, 0), with certainty."""
  return 100.0 * jax.nn.one_hot(jnp.argmax(obs[:, 0, 0, :], -1) % NUM_ACTIONS, NUM_ACTIONS)


def _frames(tiles):
  return jax.nn.one_hot(jnp.broadcast_to(jnp.asarray(tiles)[:, None, None], (len(tiles), 3, 3)),
                        NUM_TILES)


@pytest.mark.parametrize("rollout_actions", ["greedy", "sample"])
def test_imagination_on_a_hand_model(rollout_actions):
  depth, starts = 3, (0, 3)
  env = i2a.ImaginedEnv(_hand_model())
  run = jax.jit(lambda o, k: i2a.imagine(env, {}, _hand_policy, o, k, depth, rollout_actions))
  out = run(_frames(starts), jax.random.key(0))
  assert out.obs.shape == (2, NUM_ACTIONS, depth) + OBS_SHAPE
  assert out.reward.shape == out.action.shape == (2, NUM_ACTIONS, depth)
  assert out.rollout_logits.shape == (2, NUM_ACTIONS, depth, NUM_ACTIONS)
  for b, t0 in enumerate(starts):
    for a in range(NUM_ACTIONS):
      t, action = t0, a          # the first action is the rollout's own, then pi_hat's
      for k in range(depth):
        assert int(out.action[b, a, k]) == action, (b, a, k)
        assert float(out.reward[b, a, k]) == REWARDS[action]
        t = (t + action + 1) % NUM_TILES
        np.testing.assert_array_equal(out.obs[b, a, k], _frames([t])[0])
        action = t % NUM_ACTIONS


def test_imagination_under_jit_equals_chaining_predict_by_hand():
  model = i2a.make_env_model(TINY_MODEL, OBS_SHAPE, NUM_ACTIONS, i2a.RewardSpec(
      REWARDS, lambda r, info=None: jnp.zeros(jnp.shape(r), jnp.int32)))
  model_params = model.init(jax.random.key(1))
  w = jax.random.normal(jax.random.key(2), (math.prod(OBS_SHAPE), NUM_ACTIONS))
  policy = lambda o: o.reshape((o.shape[0], -1)) @ w   # noqa: E731
  obs = jax.nn.one_hot(jax.random.randint(jax.random.key(3), (2, 3, 3), 0, NUM_TILES),
                       NUM_TILES)
  depth, a = 4, 2
  out = jax.jit(lambda p, o: i2a.imagine(i2a.ImaginedEnv(model), p, policy, o, None, depth,
                                         "greedy"))(model_params, obs)
  predict = jax.jit(model.predict)   # one step at a time, chained here in Python
  for b in range(2):
    o, action = obs[b:b + 1], jnp.array([a])
    for k in range(depth):
      o, r = predict(model_params, o, action)
      assert int(out.action[b, a, k]) == int(action[0])
      np.testing.assert_array_equal(out.obs[b, a, k], o[0])
      np.testing.assert_allclose(out.reward[b, a, k], r[0])
      if k + 1 < depth:
        np.testing.assert_allclose(out.rollout_logits[b, a, k + 1], policy(o)[0], rtol=1e-5,
                                   atol=1e-5)
      action = jnp.argmax(policy(o), -1)


def test_copy_model_imagination_repeats_the_observation():
  obs = _frames([1, 4])
  out = i2a.imagine(i2a.CopyModelEnv(OBS_SHAPE, NUM_ACTIONS), None, _hand_policy, obs,
                    jax.random.key(0), 3)
  np.testing.assert_array_equal(out.obs, jnp.broadcast_to(obs[:, None, None],
                                                          (2, NUM_ACTIONS, 3) + OBS_SHAPE))
  np.testing.assert_array_equal(out.reward, np.zeros((2, NUM_ACTIONS, 3)))
  np.testing.assert_array_equal(out.action[:, :, 0], np.tile(np.arange(NUM_ACTIONS), (2, 1)))
  # Later actions: pi_hat on the unchanged frame, tile % A = 1 and 0.
  np.testing.assert_array_equal(out.action[0, :, 1:], np.ones((NUM_ACTIONS, 2)))
  np.testing.assert_array_equal(out.action[1, :, 1:], np.zeros((NUM_ACTIONS, 2)))


# ------------------------------------------------------------------------------ encoder
class HalvingSum(nn.RNNCellBase):
  """`h <- h / 2 + x`: after x_1, ..., x_n the state is sum_k 2^-(n-k) x_k."""

  @nn.compact
  def __call__(self, carry, x):
    new = 0.5 * carry + x
    return new, new

  def initialize_carry(self, rng, input_shape):
    del rng
    return jnp.zeros(input_shape)

  @property
  def num_feature_axes(self) -> int:
    return 1


def _encoder_inputs(n=2, tau=3):
  k1, k2 = jax.random.split(jax.random.key(4))
  obs = jax.nn.one_hot(jax.random.randint(k1, (n, tau, 3, 3), 0, NUM_TILES), NUM_TILES)
  return obs, jax.random.normal(k2, (n, tau))


def _features(encoder, params, obs, reward):
  n, tau = reward.shape
  f = im.StepFeatures(encoder.conv_features, encoder.kernel_sizes, encoder.strides).apply(
      {"params": params["params"]["features"]}, obs.reshape((n * tau,) + OBS_SHAPE),
      reward.reshape(-1))
  return f.reshape((n, tau, -1))


def test_encoder_reverse_order_by_hand():
  """With h <- h/2 + x the code weighs the FIRST imagined step 1, the last 2^-(tau-1)."""
  obs, reward = _encoder_inputs()
  enc = i2a.RolloutEncoder(conv_features=(3,), kernel_sizes=(3,), strides=(1,),
                           cell=HalvingSum())
  params = enc.init(jax.random.key(5), obs, reward)
  code = enc.apply(params, obs, reward)
  f = _features(enc, params, obs, reward)
  want = f[:, 0] + 0.5 * f[:, 1] + 0.25 * f[:, 2]
  np.testing.assert_allclose(code, want, rtol=1e-5, atol=1e-6)
  forward = 0.25 * f[:, 0] + 0.5 * f[:, 1] + f[:, 2]
  assert np.abs(np.asarray(code - forward)).max() > 1e-2
  # The reward plane is part of every step's features: a changed reward changes the code.
  assert np.abs(np.asarray(enc.apply(params, obs, reward + 1.0) - code)).max() > 1e-2


def test_encoder_lstm_runs_last_step_first():
  obs, reward = _encoder_inputs()
  enc = i2a.RolloutEncoder(conv_features=(3,), kernel_sizes=(3,), strides=(2,), lstm_size=5)
  params = enc.init(jax.random.key(6), obs, reward)
  code = enc.apply(params, obs, reward)
  f = _features(enc, params, obs, reward)
  cell = nn.OptimizedLSTMCell(5)
  cell_params = {"params": params["params"]["lstm"]}

  def run(order):
    carry = cell.initialize_carry(jax.random.key(0), f[:, 0].shape)
    for t in order:
      carry, y = cell.apply(cell_params, carry, f[:, t])
    return y
  np.testing.assert_allclose(code, run([2, 1, 0]), rtol=1e-5, atol=1e-6)
  assert np.abs(np.asarray(code - run([0, 1, 2]))).max() > 1e-4


def test_aggregate_concatenates_in_action_order():
  codes = jnp.arange(2 * 3 * 2.0).reshape(2, 3, 2)     # [N, A, L]
  np.testing.assert_array_equal(i2a.aggregate(codes),
                                [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])


# ------------------------------------------------------------------------------ the network
@pytest.fixture(scope="module")
def network():
  model = i2a.make_env_model(TINY_MODEL, OBS_SHAPE, NUM_ACTIONS, i2a.RewardSpec(
      REWARDS, lambda r, info=None: jnp.zeros(jnp.shape(r), jnp.int32)))
  model_params = model.init(jax.random.key(7))
  net = i2a.make_i2a_network(TINY.replace(imagination_mode="probs"), OBS_SHAPE, NUM_ACTIONS,
                             model)
  obs = _frames([0, 2, 4])
  params = net.init(jax.random.key(8), obs, model_params, jax.random.key(9))
  return model, model_params, net, params, obs


def _norms(tree):
  return {"/".join(str(getattr(k, "key", k)) for k in path): float(jnp.abs(x).max())
          for path, x in jax.tree_util.tree_leaves_with_path(tree)}


def test_network_gradients_freeze_the_model_and_pi_hat(network):
  """The RL outputs' gradient reaches the encoder, torso and heads, not the model (stopped;
  "probs" imagination would otherwise carry it) nor pi_hat."""
  _, model_params, net, params, obs = network
  key = jax.random.key(10)

  def rl(p, mp):
    out = net.apply(p, obs, mp, key)
    return jnp.sum(out.logits ** 2) + jnp.sum(out.value)
  g_params, g_model = jax.jit(jax.grad(rl, argnums=(0, 1)))(params, model_params)
  assert max(_norms(g_model).values()) == 0.0
  norms = _norms(g_params)
  assert all(v == 0.0 for k, v in norms.items() if "rollout_policy" in k)
  for part in ("encoder", "torso", "hidden", "policy", "value"):
    assert max(v for k, v in norms.items() if k.startswith(f"params/{part}/")) > 0, part
  out = net.apply(params, obs, model_params, key)
  assert out.logits.shape == out.rollout_logits.shape == (3, NUM_ACTIONS)
  assert out.value.shape == (3,)
  assert out.imagination.obs.shape == (3, NUM_ACTIONS, TINY.depth) + OBS_SHAPE
  # The imagination code feeds the policy: another model gives other logits.
  other = jax.tree.map(lambda x: x + 0.5, model_params)
  assert np.abs(np.asarray(net.apply(params, obs, other, key).logits - out.logits)).max() > 0


def test_distillation_step_trains_pi_hat_only(network):
  _, model_params, net, params, obs = network
  key = jax.random.key(11)

  def dist(p):
    out = net.apply(p, obs, model_params, key)
    return i2a.distillation_loss(out.logits, out.rollout_logits)
  loss, grads = jax.jit(jax.value_and_grad(dist))(params)
  norms = _norms(grads)
  assert all(v == 0.0 for k, v in norms.items() if "rollout_policy" not in k)
  assert max(v for k, v in norms.items() if "rollout_policy" in k) > 0
  new = jax.tree.map(lambda p, g: p - 1.0 * g, params, grads)
  assert float(dist(new)) < float(loss)
  changed = {k: float(jnp.abs(a - b).max()) for (k, a), (_, b) in zip(
      jax.tree_util.tree_leaves_with_path(new["params"]["rollout_policy"]),
      jax.tree_util.tree_leaves_with_path(params["params"]["rollout_policy"]))}
  assert all(v > 0 for v in changed.values()), changed


def test_copy_model_network(network):
  _, _, net, params, obs = network
  copy = i2a.make_i2a_network(TINY.replace(copy_model=True), OBS_SHAPE, NUM_ACTIONS)
  copy_params = copy.init(jax.random.key(8), obs, None, jax.random.key(9))
  # The same architecture: the same parameter tree.
  assert (jax.tree.map(jnp.shape, copy_params) == jax.tree.map(jnp.shape, params))
  out = jax.jit(lambda p, o: copy.apply(p, o, None, jax.random.key(9)))(params, obs)
  np.testing.assert_array_equal(out.imagination.obs, jnp.broadcast_to(
      obs[:, None, None], (3, NUM_ACTIONS, TINY.depth) + OBS_SHAPE))
  np.testing.assert_array_equal(out.imagination.reward, np.zeros((3, NUM_ACTIONS, TINY.depth)))
  # Leading batch axes [T, B] are flattened and restored.
  out2 = copy.apply(params, jnp.stack([obs, obs]), None, jax.random.key(9))
  assert out2.logits.shape == (2, 3, NUM_ACTIONS)


# ------------------------------------------------------------------------------ bad input
def test_depth_zero_is_rejected_by_name():
  env = i2a.ImaginedEnv(_hand_model())
  with pytest.raises(ValueError, match="depth"):
    i2a.imagine(env, {}, _hand_policy, _frames([0]), jax.random.key(0), 0)
  with pytest.raises(ValueError, match="depth"):
    i2a.make_i2a_network(TINY.replace(depth=0), OBS_SHAPE, NUM_ACTIONS, _hand_model())


def test_observation_shape_mismatch_is_rejected():
  env = i2a.ImaginedEnv(_hand_model())
  bad = jnp.zeros((2, 4, 4, NUM_TILES))
  with pytest.raises(ValueError, match=r"obs_shape \(3, 3, 5\)"):
    i2a.imagine(env, {}, _hand_policy, bad, jax.random.key(0), 2)
  with pytest.raises(ValueError, match=r"obs_shape \(3, 3, 5\) does not match .* \(4, 4, 5\)"):
    i2a.make_i2a_network(TINY, (4, 4, NUM_TILES), NUM_ACTIONS, _hand_model())
  with pytest.raises(ValueError, match="num_actions"):
    i2a.make_i2a_network(TINY, OBS_SHAPE, NUM_ACTIONS + 1, _hand_model())
  with pytest.raises(ValueError, match="env_model is required"):
    i2a.make_i2a_network(TINY, OBS_SHAPE, NUM_ACTIONS)
  with pytest.raises(ValueError, match="rollout_actions='sample' needs a key"):
    i2a.imagine(env, {}, _hand_policy, _frames([0]), None, 2)
