"""The I2A trainer (`agents.i2a.train`): the large standard agent's width matches I2A's parameter
count, the update's reused imagination gives the same loss and gradients as imagining again with
the same keys, pi_hat learns by distillation only, bad input is refused by name, and a tiny I2A
learns a corridor far better than a uniform policy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_envs

from agents import a2c, i2a
from agents.i2a import train as tr
from envs import spaces

TINY_MODEL = i2a.EnvModelConfig(width=8, blocks=((4, 4, 8),), large_kernel=3, frame_hidden=8,
                                reward_hidden=4)
TINY_NET = i2a.I2AConfig(depth=2, conv_features=(4,), kernel_sizes=(3,), strides=(1,),
                         hidden_size=8, encoder_features=(4,), encoder_kernel_sizes=(3,),
                         encoder_strides=(2,), lstm_size=4, rollout_features=(4,),
                         rollout_kernel_sizes=(3,), rollout_strides=(1,), rollout_hidden=8)
TINY_A2C = a2c.default_config(num_envs=4, rollout_length=3, updates_per_chunk=2, num_chunks=2)


class GridChain(tiny_envs.Chain):
  """`tiny_envs.Chain` seen as a one-row grid of one-hot tiles `(1, length, 2)` (empty, agent)."""

  def observation_space(self, params=None):
    return spaces.Box(0.0, 1.0, (1, self.length, 2), jnp.float32)

  def _grid(self, obs):
    return jax.nn.one_hot(obs.astype(jnp.int32), 2)[None]

  def reset_env(self, key, params):
    obs, state = super().reset_env(key, params)
    return self._grid(obs), state

  def step_env(self, key, state, action, params):
    obs, state, reward, terminated, truncated, info = super().step_env(key, state, action, params)
    return self._grid(obs), state, reward, terminated, truncated, info


CHAIN_SPEC = i2a.RewardSpec((0.0, 1.0), i2a.env_model.nearest_value_classes((0.0, 1.0)), "chain")


@pytest.fixture(scope="module")
def chain():
  env = GridChain(6)
  params = env.default_params.replace(max_steps=30)
  model = i2a.env_model_for(TINY_MODEL, env, params, CHAIN_SPEC)
  return env, params, model, model.init(jax.random.key(1))


# ------------------------------------------------------------------------------ large standard
@pytest.mark.parametrize("obs_shape,num_actions,net", [
    ((7, 7, 7), 4, TINY_NET),
    ((15, 19, 6), 5, i2a.I2AConfig(depth=5)),   # MiniPacman, default sizes
])
def test_standard_width_matches_the_i2a_parameter_count(obs_shape, num_actions, net):
  """Tolerance: half a hidden unit's parameters (the count moves in steps of F + A + 2), and
  under 1% of I2A's count."""
  target = tr.i2a_param_count(net, obs_shape, num_actions)
  h = tr.standard_hidden_size(net, obs_shape, num_actions)
  step = (tr.standard_param_count(net, obs_shape, num_actions, h + 1)
          - tr.standard_param_count(net, obs_shape, num_actions, h))
  got = tr.standard_param_count(net, obs_shape, num_actions, h)
  assert abs(got - target) <= step / 2
  assert abs(got - target) / target < 0.01
  assert h > net.hidden_size          # the standard agent is wider than I2A's own hidden layer
  # The count is exactly the network's: init a real standard agent and count.
  net_std = tr._standard_network(net, num_actions, h)
  assert tr.count_params(net_std.init(jax.random.key(0), jnp.zeros((1,) + obs_shape))) == got


def test_standard_trainer_uses_the_matched_width(chain):
  env, params, _, _ = chain
  trainer = tr.make_agent_trainer(tr.AgentConfig(agent="standard", a2c=TINY_A2C, net=TINY_NET),
                                  env, params)
  assert trainer.network.hidden_size == tr.standard_hidden_size(TINY_NET, (1, 6, 2), 2)
  # Copy-model agent: the same trainable count as I2A, whose model is not trained.
  copy = tr.make_agent_trainer(tr.AgentConfig(agent="copy", a2c=TINY_A2C, net=TINY_NET), env,
                               params)
  state = jax.eval_shape(copy.init, jax.random.key(0))
  assert tr.count_params(state.params) == tr.i2a_param_count(TINY_NET, (1, 6, 2), 2)


# ------------------------------------------------------------------------------ reused imagination
def _grads(trainer, state, traj=None, carry_obs=None, k_boot=None):
  if traj is None:
    carry, traj, k_boot, _ = jax.jit(trainer.collect)(state)
    traj, carry_obs = traj._replace(info=None), carry.obs
  fn = jax.jit(jax.value_and_grad(trainer.loss, has_aux=True))
  (loss, info), grads = fn(state.params, traj, carry_obs, k_boot)
  return traj, carry_obs, k_boot, loss, info, grads


@pytest.fixture(scope="module")
def both(chain):
  """One update's rollout, loss and gradients with reused imagination and imagining again, from
  the same state and keys; pi_hat's actions and the model's tiles sampled (keys matter)."""
  env, params, model, model_params = chain
  net = TINY_NET.replace(rollout_actions="sample", imagination_mode="sample")
  make = lambda reuse: tr.make_agent_trainer(  # noqa: E731
      tr.AgentConfig(agent="i2a", a2c=TINY_A2C, net=net, reuse_imagination=reuse), env, params,
      env_model=model, model_params=model_params)
  reuse, again = make(True), make(False)
  state = reuse.init(jax.random.key(3))
  return net, state, _grads(reuse, state), _grads(again, state)


def _max_abs(tree) -> float:
  return max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(tree))


def test_reused_imagination_equals_imagining_again(both):
  _, _, (traj_r, _, _, loss_r, info_r, g_r), (traj_a, _, _, loss_a, info_a, g_a) = both
  np.testing.assert_array_equal(traj_r.action, traj_a.action)        # same acting passes
  assert isinstance(traj_r.policy_extras, i2a.Imagination)           # stored imagination
  assert traj_r.policy_extras.obs.shape == (3, 4, 2, 2, 1, 6, 2)     # [T, B, A, tau, H, W, C]
  assert traj_a.policy_extras.shape == (3, 4)                        # keys only
  # The sampled imagination differs between environments (so keys are not shared by accident).
  assert float(jnp.max(jnp.abs(traj_r.policy_extras.obs[:, 0]
                               - traj_r.policy_extras.obs[:, 1]))) > 0
  np.testing.assert_allclose(loss_r, loss_a, rtol=1e-5)
  np.testing.assert_allclose(info_r["distill"], info_a["distill"], rtol=1e-5)
  for x, y in zip(jax.tree.leaves(g_r), jax.tree.leaves(g_a)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
  assert _max_abs(g_r) > 0


def test_policy_gradient_into_pi_hat_is_zero(chain, both):
  """With distill_coef 0 the loss is A2C's alone: exactly no gradient reaches pi_hat (its
  imagination actions are discrete and stopped); with the default coefficient pi_hat's gradient
  is the distillation's, non-zero."""
  env, params, model, model_params = chain
  net, state, (traj, obs, k_boot, _, _, grads), _ = both
  zero = tr.make_agent_trainer(
      tr.AgentConfig(agent="i2a", a2c=TINY_A2C, net=net.replace(distill_coef=0.0)), env,
      params, env_model=model, model_params=model_params)
  *_, g0 = _grads(zero, state, traj, obs, k_boot)
  assert _max_abs(tr.rollout_policy_params(g0)) == 0.0
  assert _max_abs({k: v for k, v in g0["params"].items() if k != "rollout_policy"}) > 0
  assert _max_abs(tr.rollout_policy_params(grads)) > 1e-6
  # Without pi_hat's part the two gradients are the same (distillation touches pi_hat only).
  for k in grads["params"]:
    if k != "rollout_policy":
      for x, y in zip(jax.tree.leaves(grads["params"][k]), jax.tree.leaves(g0["params"][k])):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------ bad input
def test_bad_input_is_refused_by_name(chain):
  env, params, model, model_params = chain
  make = lambda cfg, **kw: tr.make_agent_trainer(cfg, env, params, **kw)  # noqa: E731
  with pytest.raises(ValueError, match="depth"):
    make(tr.AgentConfig(agent="i2a", net=TINY_NET.replace(depth=0)), env_model=model,
         model_params=model_params)
  with pytest.raises(ValueError, match=r"config.agent must be one of .*'planner'"):
    make(tr.AgentConfig(agent="planner"))
  other = i2a.make_env_model(TINY_MODEL, (1, 5, 2), 2, CHAIN_SPEC)
  with pytest.raises(ValueError, match=r"obs_shape \(1, 5, 2\) does not match .* \(1, 6, 2\)"):
    make(tr.AgentConfig(agent="i2a", net=TINY_NET), env_model=other,
         model_params=other.init(jax.random.key(0)))
  corrupted = jax.tree.map(lambda x: x[..., :1], model_params)
  with pytest.raises(ValueError, match="corrupted checkpoint"):
    make(tr.AgentConfig(agent="i2a", net=TINY_NET), env_model=model, model_params=corrupted)
  with pytest.raises(ValueError, match="needs env_model and model_params"):
    make(tr.AgentConfig(agent="i2a", net=TINY_NET))
  with pytest.raises(ValueError, match="config.standard_hidden"):
    make(tr.AgentConfig(agent="standard", standard_hidden=-1))


# ------------------------------------------------------------------------------ learning
@pytest.mark.slow  # 9-17 s; fast counterparts: the loss, gradient and reuse checks above
def test_i2a_learns_the_corridor_far_better_than_random(chain):
  """GridChain(6), 30-step limit: the shortest episode is 5 steps; a uniform policy needs about
  25 on average and is often cut at 30. The model is trained first (uniform data), then frozen;
  after 300 updates I2A's sampled policy must average under 8 steps with return 1 every episode.
  """
  env, params, model, _ = chain
  data = i2a.collect_transitions(i2a.uniform_policy(2), env, params, CHAIN_SPEC,
                                 jax.random.key(0), 16, 40)
  mt = i2a.make_trainer(model, i2a.TrainConfig(steps_per_chunk=300, learning_rate=3e-3))
  ms, _ = mt.chunk(mt.init(jax.random.key(1)), i2a.flatten(data))
  acc = i2a.multi_step_accuracy(lambda o, a: model.predict(ms.params, o, a)[0], data, (1,))
  assert float(acc["frame"][0]) > 0.95
  config = tr.AgentConfig(
      agent="i2a", net=TINY_NET,
      a2c=a2c.default_config(num_envs=8, rollout_length=5, updates_per_chunk=100, num_chunks=3,
                             learning_rate=3e-3, entropy_coef=0.001, discount=0.9))
  trainer = tr.make_agent_trainer(config, env, params, env_model=model, model_params=ms.params,
                                  env_name="grid-chain")
  state, metrics = jax.jit(trainer.train)(jax.random.key(0))
  a2c.check_finite(jax.device_get(metrics), "grid-chain")
  start = jax.jit(trainer.init)(jax.random.key(0)).params   # same key: the initial params
  moved = _max_abs(jax.tree.map(lambda x, y: x - y, tr.rollout_policy_params(state.params),
                                tr.rollout_policy_params(start)))
  assert moved > 1e-3                                        # pi_hat trained (distillation)
  assert float(np.mean(metrics["distill_loss"][-50:])) < float(np.mean(
      metrics["distill_loss"][:50]))

  def evaluate(policy, key):
    out = jax.jit(lambda k: a2c.evaluation_rollout(policy, env, params, k, 16, 61))(key)
    return a2c.complete_episodes(jax.device_get(out), 30)

  ours = evaluate(lambda k, obs: trainer.policy(state.params, k, obs), jax.random.key(1))
  uniform = evaluate(lambda k, obs: jax.random.randint(k, (obs.shape[0],), 0, 2),
                     jax.random.key(1))
  assert len(ours["length"]) >= 16 and len(uniform["length"]) >= 16
  assert ours["length"].mean() < 8.0 and ours["return"].mean() == 1.0
  assert uniform["length"].mean() > 15.0
