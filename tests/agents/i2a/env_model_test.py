"""I2A's environment model: pool-and-inject by hand, the loss by hand, reward classes, learning
Sokoban 7x7/2 dynamics beyond the copy model, k-step accuracy, imagination through
`agents.rollout`, and bad input."""
import math

import flax
import flax.core
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from agents import i2a
from agents import rollout as rollout_lib
from agents.i2a import env_model as em

TINY = i2a.EnvModelConfig(width=8, blocks=((4, 4, 8),), large_kernel=3, frame_hidden=8,
                          reward_hidden=4)
# The trained model of the learning tests: one basic block with a 5x5 long-range path (radius 2:
# enough to see the box a push moves), 16 channels; the fixture adds class-balanced reward
# weights of its training data (`balanced_reward_weights`, cap 30).
SMALL = i2a.EnvModelConfig(width=16, blocks=((8, 8, 16),), large_kernel=5, frame_hidden=16,
                           reward_hidden=32)
TRAIN_STEPS = 600


@pytest.fixture(scope="module")
def sokoban():
  env, params = envs.make("sokoban", height=7, width=7, num_boxes=2)
  return env, params, i2a.sokoban_reward_spec(params)


@pytest.fixture(scope="module")
def data(sokoban):
  """3,200 training transitions (32 envs x 100 steps) and 960 held-out (16 x 60), uniform."""
  env, params, spec = sokoban
  policy = i2a.uniform_policy(env.num_actions)
  train = i2a.collect_transitions(policy, env, params, spec, jax.random.key(0), 32, 100)
  test = i2a.collect_transitions(policy, env, params, spec, jax.random.key(1), 16, 60)
  return train, test


@pytest.fixture(scope="module")
def trained(sokoban, data):
  env, params, spec = sokoban
  weights = em.balanced_reward_weights(data[0].reward_class, spec.num_classes)
  model = i2a.env_model_for(SMALL.replace(reward_class_weights=weights), env, params, spec)
  trainer = i2a.make_trainer(model, i2a.TrainConfig(learning_rate=3e-3, batch_size=64,
                                                    steps_per_chunk=TRAIN_STEPS))
  state, metrics = trainer.chunk(trainer.init(jax.random.key(2)), i2a.flatten(data[0]))
  return model, state.params, metrics


def _among(x, values) -> bool:
  """Every entry of `x` equals one of `values` (to float32 precision)."""
  x = np.asarray(x, np.float64)[..., None]
  return bool(np.all(np.abs(x - np.asarray(values)).min(-1) < 1e-5))


# ------------------------------------------------------------------------------ architecture
def test_pool_and_inject_by_hand():
  x = jnp.array([[[1.0, -2.0], [0.5, 4.0], [3.0, 0.0]],
                 [[-1.0, 1.0], [2.0, -5.0], [0.0, 0.5]]])[None]   # [1, H=2, W=3, F=2]
  out = np.asarray(i2a.pool_and_inject(x))
  assert out.shape == (1, 2, 3, 4)
  np.testing.assert_array_equal(out[..., :2], np.asarray(x))
  # Channel 0's max is 3.0 (cell (0, 2)), channel 1's is 4.0 (cell (0, 1)): on every cell.
  np.testing.assert_array_equal(out[..., 2], np.full((1, 2, 3), 3.0))
  np.testing.assert_array_equal(out[..., 3], np.full((1, 2, 3), 4.0))


def test_pool_and_inject_carries_a_distant_cell():
  """With 1x1 and 3x3 convolutions only (radius 1), a block's output at cell (0, 0) still
  depends on cell (6, 6) of a 7x7 frame, through the global max; without the pool it could
  not."""
  block = em.BasicBlock(4, 4, 4, large_kernel=1)
  x = jax.random.uniform(jax.random.key(0), (1, 7, 7, 3))
  params = block.init(jax.random.key(1), x)
  far = x.at[0, 6, 6].set(5.0)   # above every other value: changes the channels' maxima
  a, b = block.apply(params, x), block.apply(params, far)
  assert a.shape == (1, 7, 7, 4 + 3)
  assert np.abs(np.asarray(a[0, 0, 0, :4] - b[0, 0, 0, :4])).max() > 1e-4
  # The block's input channels ride along unchanged (the block concatenates its input).
  np.testing.assert_array_equal(np.asarray(a[..., 4:]), np.asarray(x))


def test_shapes_and_per_tile_distributions(sokoban):
  env, params, spec = sokoban
  model = i2a.env_model_for(TINY, env, params, spec)
  p = model.init(jax.random.key(0))
  obs, _ = env.reset(jax.random.key(1), params)
  obs = jnp.stack([obs, obs, obs])
  action = jnp.array([0, 1, 3], jnp.int32)
  apply, predict = jax.jit(model.apply), jax.jit(model.predict, static_argnames="mode")
  frame_logits, reward_logits = apply(p, obs, action)
  assert frame_logits.shape == (3, 7, 7, 7) and reward_logits.shape == (3, 4)
  probs, expected_reward = predict(p, obs, action, mode="probs")
  np.testing.assert_allclose(np.asarray(probs.sum(-1)), 1.0, rtol=1e-6)
  assert np.all(np.asarray(probs) >= 0)
  r_probs = np.asarray(jax.nn.softmax(reward_logits))
  np.testing.assert_allclose(np.asarray(expected_reward), r_probs @ np.array(spec.values),
                             rtol=1e-5)
  greedy, reward = predict(p, obs, action)
  np.testing.assert_array_equal(np.asarray(greedy.sum(-1)), 1.0)          # one-hot tiles
  np.testing.assert_array_equal(np.asarray(greedy.argmax(-1)), np.asarray(probs.argmax(-1)))
  np.testing.assert_allclose(np.asarray(reward),
                             np.array(spec.values, np.float32)[r_probs.argmax(-1)])
  sampled, s_reward = predict(p, obs, action, mode="sample", key=jax.random.key(2))
  np.testing.assert_array_equal(np.asarray(sampled.sum(-1)), 1.0)
  assert _among(s_reward, spec.values)
  # Leading axes are kept: [2, 3] observations.
  f2, r2 = apply(p, jnp.stack([obs, obs]), jnp.stack([action, action]))
  assert f2.shape == (2, 3, 7, 7, 7) and r2.shape == (2, 3, 4)
  np.testing.assert_allclose(np.asarray(f2[1]), np.asarray(frame_logits), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 1), (5, 1), (3, 2)])
def test_xla_convolution_equals_patches_x_kernel(k, stride):
  """`PatchConv(impl="xla")` and `impl="patches"`: the same params tree and, from the same
  params (nonzero bias), the same output to float32 rounding (rtol 1e-5 of the output's scale)."""
  x = jax.random.normal(jax.random.key(0), (3, 7, 6, 5))
  xla = em.PatchConv(4, k, stride, impl="xla")
  patches = em.PatchConv(4, k, stride, impl="patches")
  p = xla.init(jax.random.key(1), x)
  p = jax.tree.map(lambda v: v + 0.1, p)           # a nonzero bias
  assert jax.tree.structure(p) == jax.tree.structure(patches.init(jax.random.key(1), x))
  y, y_ref = xla.apply(p, x), patches.apply(p, x)
  assert y.shape == y_ref.shape == (3, -(-7 // stride), -(-6 // stride), 4)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(y_ref))))
  # An independent reference: flax's own convolution with the same kernel and bias.
  flax_y = jax.lax.conv_general_dilated(x, p["params"]["kernel"], (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(y_ref, flax_y + p["params"]["bias"], rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="impl must be one of"):
    em.PatchConv(4, k, stride, impl="fft").init(jax.random.key(1), x)


def test_rollout_convolutions_keep_outputs_and_the_cached_params_tree(sokoban):
  """`apply`/`predict` with XLA's convolution (the default `rollout_conv`) against the patches
  form, same params: frame and reward logits equal to float32 rounding, greedy predictions
  identical; the params tree keeps the names of models cached before the choice existed."""
  env, params, spec = sokoban
  xla = i2a.env_model_for(TINY, env, params, spec)
  patches = i2a.env_model_for(TINY.replace(rollout_conv="patches"), env, params, spec)
  p = jax.tree.map(lambda v: v + 0.05, xla.init(jax.random.key(0)))
  patches.check_params(p)
  names = {jax.tree_util.keystr(path[:-1]) for path, _ in
           jax.tree_util.tree_flatten_with_path(p)[0]}
  assert names == {"['params']['" + n.replace("/", "']['") + "']" for n in (
      "PatchConv_0", "PatchConv_1", "PatchConv_2", "PatchConv_3", "frame_out", "reward_out",
      *(f"BasicBlock_0/PatchConv_{i}" for i in range(5)))}
  keys = jax.random.split(jax.random.key(1), 8)
  obs = jax.vmap(lambda k: env.reset(k, params)[0])(keys)
  action = jnp.arange(8, dtype=jnp.int32) % 4
  (f, r), (f_ref, r_ref) = xla.apply(p, obs, action), patches.apply(p, obs, action)
  np.testing.assert_allclose(f, f_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(r, r_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_array_equal(xla.predict(p, obs, action)[0],
                                patches.predict(p, obs, action)[0])
  with pytest.raises(ValueError, match="config.rollout_conv must be one of"):
    i2a.make_env_model(TINY.replace(rollout_conv="fft"), (7, 7, 7), 4, spec)


# ------------------------------------------------------------------------------ loss
def test_frame_loss_by_hand_2x2():
  # 2x2 frame, 2 tile classes. Tile (0,0): logits (0, 0) -> -log 1/2; tile (0,1): logits
  # (log 3, 0), target class 0 -> -log 3/4; tile (1,0): same logits, target 1 -> -log 1/4;
  # tile (1,1): logits (0, log 2), target 1 -> -log 2/3.
  logits = jnp.array([[[0.0, 0.0], [math.log(3), 0.0]],
                      [[math.log(3), 0.0], [0.0, math.log(2)]]])
  target = jnp.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
  expected = math.log(2) + math.log(4 / 3) + math.log(4) + math.log(3 / 2)
  np.testing.assert_allclose(float(em.frame_loss(logits, target)), expected, rtol=1e-6)


def test_loss_equals_hand_computed_cross_entropy_2x2():
  """`loss` = mean over valid frames of the summed per-tile cross-entropy + reward_coef x the
  mean reward cross-entropy, recomputed in numpy from the model's own logits."""
  spec = i2a.RewardSpec((-1.0, 0.0, 2.0), em.nearest_value_classes((-1.0, 0.0, 2.0)))
  model = i2a.make_env_model(TINY.replace(reward_coef=0.5), (2, 2, 3), 2, spec)
  params = model.init(jax.random.key(0))
  tiles = np.array([[[0, 1], [2, 0]], [[1, 1], [0, 2]], [[2, 2], [2, 1]]])
  obs = jax.nn.one_hot(tiles, 3)
  nxt = jax.nn.one_hot(np.roll(tiles, 1, axis=0), 3)
  batch = i2a.Transitions(obs, jnp.array([0, 1, 1]), nxt, jnp.array([0.0, 2.0, -1.0]),
                          jnp.array([1, 2, 0]), jnp.array([1.0, 0.0, 1.0]))
  loss, info = jax.jit(model.loss)(params, batch)
  f, r = (np.asarray(x, np.float64) for x in jax.jit(model.apply)(params, obs, batch.action))
  log_p = f - np.log(np.exp(f).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_p, np.roll(tiles, 1, axis=0)[..., None], -1)[..., 0].sum((1, 2))
  frame = (nll[0] + nll[2]) / 2           # transition 1 ended an episode: reward only
  log_q = r - np.log(np.exp(r).sum(-1, keepdims=True))
  reward = -np.mean(log_q[[0, 1, 2], [1, 2, 0]])
  np.testing.assert_allclose(float(info.frame_nll), frame, rtol=1e-5)
  np.testing.assert_allclose(float(info.reward_ce), reward, rtol=1e-5)
  np.testing.assert_allclose(float(loss), frame + 0.5 * reward, rtol=1e-5)


def test_bernoulli_frame_loss_by_hand():
  """Per-plane sigmoid cross-entropy summed over tiles and planes: a 1x2 frame of 2 planes.
  Tile 0, logits (0, log 3), target (1, 1): -log 1/2 - log 3/4; tile 1, logits (log 3, 0),
  target (0, 0) (a floor cell, every plane off): -log 1/4 - log 1/2."""
  logits = jnp.array([[[0.0, math.log(3)], [math.log(3), 0.0]]])
  target = jnp.array([[[1.0, 1.0], [0.0, 0.0]]])
  expected = math.log(2) + math.log(4 / 3) + math.log(4) + math.log(2)
  np.testing.assert_allclose(float(em.frame_loss(logits, target, "bernoulli")), expected,
                             rtol=1e-6)
  # The categorical loss gives an all-off tile no loss at all, whatever the logits: the
  # MiniPacman failure the Bernoulli likelihood fixes (floor cells never trained).
  np.testing.assert_allclose(float(em.frame_loss(logits[:, 1:], target[:, 1:])), 0.0)
  np.testing.assert_array_equal(np.asarray(em.frame_greedy(logits, "bernoulli")),
                                [[[0.0, 1.0], [1.0, 0.0]]])


def test_change_threshold_keeps_uncertain_planes_by_hand():
  """The Bernoulli greedy frame with `change_threshold` t: a plane leaves its input value only
  where the model gives the other value a probability above t. Four planes with input
  (1, 1, 0, 0) and probabilities of "on" (0.45, 0.05, 0.55, 0.95): t = 1/2 gives the plain
  greedy frame (0, 0, 1, 1); t = 0.8 keeps the first (P(off) 0.55) and the third (P(on)
  0.55), so (1, 0, 0, 1): a ghost that moves with probability 1/2 stays where it was instead
  of being drawn in both cells or in neither."""
  probs = jnp.array([0.45, 0.05, 0.55, 0.95])
  logits = jnp.log(probs) - jnp.log1p(-probs)
  obs = jnp.array([1.0, 1.0, 0.0, 0.0])
  np.testing.assert_array_equal(np.asarray(em.frame_greedy(logits, "bernoulli")), [0, 0, 1, 1])
  np.testing.assert_array_equal(np.asarray(em.frame_greedy(logits, "bernoulli", obs, 0.5)),
                                [0, 0, 1, 1])
  np.testing.assert_array_equal(np.asarray(em.frame_greedy(logits, "bernoulli", obs, 0.8)),
                                [1, 0, 0, 1])
  with pytest.raises(ValueError, match="config.change_threshold must be in"):
    em.check_config(TINY.replace(frame_likelihood="bernoulli", change_threshold=1.0))
  with pytest.raises(ValueError, match="change_threshold applies to frame_likelihood='bern"):
    em.check_config(TINY.replace(change_threshold=0.8))


def _zero_except_copy_scale(params):
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
  return flax.traverse_util.unflatten_dict(
      {k: (v if k[-1] == "copy_scale" else jnp.zeros_like(v)) for k, v in flat.items()})


@pytest.mark.parametrize("likelihood", ["categorical", "bernoulli"])
def test_copy_path_with_zero_weights_is_the_copy_model(likelihood):
  """With `copy_path` and every weight but `copy_scale` zero, the greedy prediction is the
  input frame exactly, on MiniPacman's overlapping planes (Bernoulli; floor cells all off,
  ghosts on food) and on one-hot Sokoban tiles (categorical), and `multi_step_accuracy` scores
  it exactly as the copy model. The frame logits are `copy_scale * copy_logits(obs)` (scale
  initialised to 1): +-1 per plane, or the one-hot itself."""
  if likelihood == "bernoulli":
    env, params = envs.make("minipacman-regular")
    spec = i2a.minipacman_event_spec(params)
  else:
    env, params = envs.make("sokoban", height=7, width=7, num_boxes=2)
    spec = i2a.sokoban_reward_spec(params)
  config = TINY.replace(frame_likelihood=likelihood, copy_path=True)
  model = i2a.env_model_for(config, env, params, spec)
  p = _zero_except_copy_scale(model.init(jax.random.key(0)))
  np.testing.assert_array_equal(np.asarray(p["params"]["copy_scale"]), 1.0)
  traj = i2a.collect_transitions(i2a.uniform_policy(env.num_actions), env, params, spec,
                                 jax.random.key(1), 4, 12)
  obs = traj.obs_tm1.reshape((-1,) + traj.obs_tm1.shape[2:])
  act = traj.action.reshape(-1)
  frame_logits, _ = model.apply(p, obs, act)
  np.testing.assert_array_equal(np.asarray(frame_logits),
                                np.asarray(em.copy_logits(obs, likelihood)))
  pred, _ = model.predict(p, obs, act)
  np.testing.assert_array_equal(np.asarray(pred), np.asarray(obs))
  if likelihood == "bernoulli":  # the data has floor cells (all planes off): not one-hot
    assert np.any(np.asarray(obs).sum(-1) == 0)
    # MiniPacman's greedy rule (`change_threshold` 0.7) keeps the copy too.
    kept = i2a.env_model_for(config.replace(change_threshold=0.7), env, params, spec)
    np.testing.assert_array_equal(np.asarray(kept.predict(p, obs, act)[0]), np.asarray(obs))
  ours = i2a.multi_step_accuracy(lambda o, a: model.predict(p, o, a)[0], traj, (1, 3))
  copy = i2a.multi_step_accuracy(i2a.copy_predict, traj, (1, 3))
  for name in ("frame", "tile", "changed_tile", "count"):
    np.testing.assert_array_equal(np.asarray(ours[name]), np.asarray(copy[name]))
  # Without the path the params tree has no `copy_scale` (cached models still load).
  plain = i2a.env_model_for(TINY.replace(frame_likelihood=likelihood), env, params, spec)
  assert "copy_scale" not in plain.init(jax.random.key(0))["params"]


def test_multi_step_accuracy_compares_all_planes():
  """Tiles are compared plane by plane: a floor cell (all planes off) is not a wall (plane 0
  on), and a ghost on food (planes 1 and 4) is not plain food, though argmax over C would call
  both pairs equal. A 1x3 strip of 5 planes, T = 1."""
  floor, wall, food = [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]
  ghost_on_food = [0, 1, 0, 0, 1]
  start = jnp.array([[wall, food, ghost_on_food]], jnp.float32)   # [H=1, W=3, C=5]
  nxt = jnp.array([[floor, ghost_on_food, food]], jnp.float32)
  traj = i2a.Transitions(start[None, None], jnp.zeros((1, 1), jnp.int32), nxt[None, None],
                         jnp.zeros((1, 1)), jnp.zeros((1, 1), jnp.int32), jnp.ones((1, 1)))
  acc = i2a.multi_step_accuracy(i2a.copy_predict, traj, (1,))
  np.testing.assert_allclose(np.asarray(acc["tile"]), [0.0])       # all three tiles changed
  np.testing.assert_allclose(np.asarray(acc["frame"]), [0.0])
  np.testing.assert_allclose(np.asarray(acc["changed_tile"]), [0.0])
  np.testing.assert_array_equal(np.asarray(em.tiles_equal(start, nxt)), [[False] * 3])
  # argmax would have scored the copy model right on every tile:
  assert np.all(np.argmax(start, -1) == np.argmax(nxt, -1))


# ------------------------------------------------------------------------------ reward classes
def test_reward_specs_by_hand(sokoban):
  _, params, spec = sokoban
  np.testing.assert_allclose(spec.values, (-0.1, 0.9, -1.1, 10.9), rtol=1e-6)
  classes = spec.class_fn(jnp.array([-0.1, 0.9, -1.1, 10.9, 0.5]), None)
  np.testing.assert_array_equal(np.asarray(classes), [0, 1, 2, 3, -1])
  _, mp = envs.make("minipacman-regular")
  events_spec = i2a.minipacman_event_spec(mp)   # regular: food 1, pill 2, ghost 5, eaten 0
  assert events_spec.num_classes == 16
  np.testing.assert_allclose([events_spec.values[k] for k in (0, 1, 2, 3, 4, 8, 13)],
                             [0, 1, 2, 3, 5, 0, 6])
  ev = jnp.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 1, 0],
                  [1, 0, 0, 0, 1], [1, 2, 0, 0, 0]], jnp.float32)
  np.testing.assert_array_equal(np.asarray(events_spec.class_fn(None, {"events": ev})),
                                [0, 1, 3, 5, 8, -1])
  avoid = np.asarray(envs.make("minipacman-avoid")[1].task_weights)
  moved = events_spec.with_values(avoid[0] + np.array(
      [[(k >> i) & 1 for i in range(4)] for k in range(16)]) @ avoid[1:])
  assert moved.values[8] == pytest.approx(0.1 - 20)   # step + eaten in avoid


def test_collected_transitions_label_rewards_and_episode_ends(sokoban, data):
  env, params, spec = sokoban
  train, _ = data
  assert train.obs_tm1.shape == (100, 32, 7, 7, 7)
  np.testing.assert_allclose(np.array(spec.values)[np.asarray(train.reward_class)],
                             np.asarray(train.reward), rtol=1e-5)
  # frame_valid is 0 exactly where an episode ended; the obs chain is unbroken otherwise.
  valid = np.asarray(train.frame_valid) > 0
  assert 0 < (~valid).sum() < valid.size
  np.testing.assert_array_equal(np.asarray(train.obs_tm1[1:]), np.asarray(train.obs_t[:-1]))
  assert (np.asarray(train.reward_class)[~valid] >= 0).all()


# ------------------------------------------------------------------------------ learning
def _one_step(predict, batch):
  """Direct one-step scores over the valid transitions of a [T, B] batch (no scan)."""
  pred = np.asarray(predict(batch.obs_tm1.reshape((-1, 7, 7, 7)), batch.action.reshape(-1)))
  pred = pred.argmax(-1)
  target = np.asarray(batch.obs_t).reshape((-1, 7, 7, 7)).argmax(-1)
  start = np.asarray(batch.obs_tm1).reshape((-1, 7, 7, 7)).argmax(-1)
  v = np.asarray(batch.frame_valid).reshape(-1) > 0
  hit = pred[v] == target[v]
  changed = target[v] != start[v]
  return {"frame": hit.all((1, 2)).mean(), "tile": hit.mean(),
          "changed_tile": hit[changed].mean() if changed.any() else np.nan}


@pytest.mark.slow  # trains the model (about 110 s under make test's XLA flags)
def test_training_beats_the_copy_model(trained, data):
  """Measured (this config, keys, 600 Adam steps; the run that set the bounds, with the
  paper's flatten reward head, unweighted): one-step held-out frame accuracy 0.80 against the
  copy model's 0.43, changed-tile accuracy 0.89 against 0 (the copy model never gets a
  changed tile right), tile accuracy 0.995 against 0.976. With the max-pooled, class-weighted
  reward head of the fixture now: frame 0.82, changed tiles 0.91, tiles 0.996. The bounds
  sit about 0.1-0.2 under the measured values (run-to-run float noise on
  the CPU moved them by under 0.02): the model must beat the copy model by 0.2 in whole frames
  and get 70% of the changed tiles."""
  model, params, metrics = trained
  _, test = data
  assert metrics["loss"][-50:].mean() < 0.5 * metrics["loss"][:50].mean()
  ours = _one_step(jax.jit(lambda o, a: model.predict(params, o, a)[0]), test)
  copy = _one_step(i2a.copy_predict, test)
  assert copy["changed_tile"] == 0.0
  assert ours["changed_tile"] > 0.7
  assert ours["frame"] > copy["frame"] + 0.2
  assert ours["frame"] > 0.6
  assert ours["tile"] > 0.99 > copy["tile"]


@pytest.mark.slow  # trains the model (about 110 s under make test's XLA flags)
def test_rare_rewards_are_predicted(trained, data):
  """The max-pooled reward head with class-balanced weights predicts the non-step rewards.

  Measured on this held-out data (960 transitions, 26 non-step rewards: 15 on, 7 off, 4
  solved): 23/26 predicted exactly, reward accuracy 0.951, against 0/26 and 0.973 (always
  -0.1) for the paper's flatten head unweighted, the previous behaviour. Other init keys
  (3, 4, 5) gave 11, 23, 18 /26 at accuracy 0.877, 0.843, 0.878: the bound 6/26 (about half
  the worst key) leaves that margin and fails the old head; the accuracy bound 0.8 only
  catches a collapse (the change trades some step-reward accuracy for recall; module
  docstring)."""
  model, params, _ = trained
  _, test = data
  _, reward_logits = jax.jit(model.apply)(params, test.obs_tm1, test.action)
  pred = np.asarray(reward_logits).argmax(-1).ravel()
  true = np.asarray(test.reward_class).ravel()
  rare = true != 0
  assert rare.sum() == 26
  assert (pred[rare] == true[rare]).sum() >= 6, (pred[rare], true[rare])
  assert (pred == true).mean() > 0.8


def test_balanced_reward_weights_by_hand():
  # Counts (6, 3, 0, 1): class 0 weighs 1, class 1 6/3 = 2, class 2 (absent) the cap, class 3
  # 6/1 = 6, capped at 4.
  labels = jnp.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 3])
  assert em.balanced_reward_weights(labels, 4, cap=4.0) == (1.0, 2.0, 4.0, 4.0)
  assert em.balanced_reward_weights(labels, 4) == (1.0, 2.0, 30.0, 6.0)
  # The weighted loss: weights multiply each transition's cross-entropy before the mean.
  spec = i2a.RewardSpec((0.0, 1.0), em.nearest_value_classes((0.0, 1.0)))
  plain = i2a.make_env_model(TINY, (2, 2, 3), 2, spec)
  weighted = i2a.make_env_model(TINY.replace(reward_class_weights=(1.0, 3.0)), (2, 2, 3), 2,
                                spec)
  obs = jax.nn.one_hot(jnp.array([[[0, 1], [2, 0]], [[1, 1], [0, 2]]]), 3)
  batch = i2a.Transitions(obs, jnp.array([0, 1]), obs, jnp.array([0.0, 1.0]),
                          jnp.array([0, 1]), jnp.ones(2))
  p = plain.init(jax.random.key(0))
  _, r = plain.apply(p, obs, batch.action)
  ce = -np.asarray(jax.nn.log_softmax(r))[[0, 1], [0, 1]]
  np.testing.assert_allclose(float(plain.loss(p, batch)[1].reward_ce), ce.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(weighted.loss(p, batch)[1].reward_ce),
                             (ce[0] + 3 * ce[1]) / 2, rtol=1e-5)
  with pytest.raises(ValueError, match="cap must be >= 1"):
    em.balanced_reward_weights(labels, 4, cap=0.5)


@pytest.mark.slow  # trains the model (about 110 s under make test's XLA flags)
def test_multi_step_accuracy_k1_is_one_step_and_falls_with_k(trained, data):
  """k = 1 of `multi_step_accuracy` equals the direct one-step scores (same starts); and on
  this fixed model and data, frame, tile and changed-tile accuracy do not rise from k to the
  next k (measured: frame 0.82, 0.62, 0.50, 0.31 for k = 1, 3, 5, 10, 0.80, 0.57, 0.45, 0.27
  with the paper's flatten reward head unweighted; copy model 0.43, 0.28, 0.20, 0.15). This
  is a property of this model's open-loop errors, checked empirically: the
  starts scored shrink with k (episode ends), so it is not an identity."""
  model, params, _ = trained
  _, test = data
  predict = lambda o, a: model.predict(params, o, a)[0]  # noqa: E731
  acc = jax.jit(lambda t: i2a.multi_step_accuracy(predict, t))(test)
  copy = jax.jit(lambda t: i2a.multi_step_accuracy(i2a.copy_predict, t))(test)
  one = _one_step(jax.jit(predict), test)
  for name in ("frame", "tile", "changed_tile"):
    np.testing.assert_allclose(float(acc[name][0]), one[name], rtol=1e-6)
    assert np.all(np.diff(np.asarray(acc[name])) <= 1e-9), (name, acc[name])
  np.testing.assert_array_equal(np.asarray(acc["k"]), [1, 3, 5, 10])
  assert np.all(np.diff(np.asarray(acc["count"])) <= 0)
  np.testing.assert_array_equal(np.asarray(acc["count"]), np.asarray(copy["count"]))
  # The model stays ahead of the copy model in whole frames at every k.
  assert np.all(np.asarray(acc["frame"]) > np.asarray(copy["frame"]))


def test_multi_step_accuracy_by_hand():
  """A 1x2 strip with 2 tile classes, T = 4, B = 1, scored with the copy model.

  Tiles (as class pairs): s0 = (0, 0) -> s1 = (1, 0) -> s2 = (1, 0) -> s3 = (1, 1) | reset |
  s4 = (0, 1); the episode ends on step 3 (frame_valid 0). Starts valid for k = 1: t = 0, 1, 2
  (t = 3 ends the episode); k = 2: t = 0, 1; k = 3: t = 0.
  """
  states = np.array([[0, 0], [1, 0], [1, 0], [1, 1], [0, 1]])
  onehot = jax.nn.one_hot(states[:, None, :], 2)[:, None]      # [5, B=1, H=1, W=2, C=2]
  traj = i2a.Transitions(onehot[:4], jnp.zeros((4, 1), jnp.int32), onehot[1:],
                         jnp.zeros((4, 1)), jnp.zeros((4, 1), jnp.int32),
                         jnp.array([[1.0], [1.0], [1.0], [0.0]]))
  acc = i2a.multi_step_accuracy(i2a.copy_predict, traj, ks=(1, 2, 3))
  np.testing.assert_array_equal(np.asarray(acc["count"]), [3, 2, 1])
  # k = 1: s0->s1 wrong (1 of 2 tiles), s1->s2 right, s2->s3 wrong (1 of 2).
  # k = 2: s0 vs s2 (1 of 2), s1 vs s3 (1 of 2).  k = 3: s0 vs s3 (0 of 2).
  np.testing.assert_allclose(np.asarray(acc["frame"]), [1 / 3, 0.0, 0.0])
  np.testing.assert_allclose(np.asarray(acc["tile"]), [(0.5 + 1 + 0.5) / 3, 0.5, 0.0])
  np.testing.assert_allclose(np.asarray(acc["changed_tile"]), [0.0, 0.0, 0.0])
  # A constant predictor, always (1, 0): k = 1 right on s1, s2, half on s3; of the changed
  # tiles (s0->s1 tile 0, s2->s3 tile 1) it gets tile 0. k = 2: s2 right, s3 half; changed:
  # s0->s2 tile 0 (right), s1->s3 tile 1 (wrong). k = 3: s3 half; changed: both of s0->s3.
  const = lambda o, a: jnp.broadcast_to(jax.nn.one_hot(jnp.array([[1, 0]]), 2), o.shape)  # noqa: E731
  acc = i2a.multi_step_accuracy(const, traj, ks=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(acc["frame"]), [2 / 3, 0.5, 0.0])
  np.testing.assert_allclose(np.asarray(acc["tile"]), [2.5 / 3, 0.75, 0.5])
  np.testing.assert_allclose(np.asarray(acc["changed_tile"]), [0.5, 0.5, 0.5])


# ------------------------------------------------------------------------------ imagination
@pytest.mark.slow  # trains the model (about 110 s under make test's XLA flags)
def test_imagination_runs_under_agents_rollout(trained, data):
  """`rollout.rollout` through `ImaginedEnv` equals chaining `predict` by hand."""
  model, params, _ = trained
  _, test = data
  imagined = i2a.ImaginedEnv(model)
  obs0 = test.obs_tm1[0, :4]
  policy = lambda k, o: (jax.random.randint(k, (o.shape[0],), 0, 4), None)  # noqa: E731
  _, traj = jax.jit(lambda c, k: rollout_lib.rollout(policy, imagined, params, c, k, 5))(
      imagined.carry(obs0), jax.random.key(3))
  assert traj.obs_t.shape == (5, 4, 7, 7, 7)
  obs, predict = obs0, jax.jit(model.predict)
  for t in range(5):
    nxt, reward = predict(params, obs, traj.action[t])
    np.testing.assert_array_equal(np.asarray(traj.obs_t[t]), np.asarray(nxt))
    np.testing.assert_allclose(np.asarray(traj.reward[t]), np.asarray(reward), rtol=1e-6)
    obs = nxt
  assert not np.asarray(traj.terminated).any() and not np.asarray(traj.truncated).any()
  # Sampled frames: one-hot tiles, rewards among the classes' values.
  sampler = i2a.ImaginedEnv(model, mode="sample")
  _, straj = rollout_lib.rollout(policy, sampler, params, sampler.carry(obs0),
                                 jax.random.key(4), 2)
  np.testing.assert_array_equal(np.asarray(straj.obs_t.sum(-1)), 1.0)
  assert _among(straj.reward, model.reward_spec.values)


# ------------------------------------------------------------------------------ bad input
def test_bad_input_names_the_field(sokoban, data):
  env, params, spec = sokoban
  model = i2a.env_model_for(TINY, env, params, spec)
  p = model.init(jax.random.key(0))
  obs = data[1].obs_tm1[0, :2]
  # A model built for another room size.
  big_env, big_params = envs.Sokoban(height=8, width=8, num_boxes=2), None  # (no level pool)
  with pytest.raises(ValueError, match=r"obs_shape \(7, 7, 7\) does not match .* \(8, 8, 7\)"):
    i2a.check_compatible(model, big_env, big_params)
  # The max-pooled reward head has no per-position weights, so room size alone does not change
  # the params; the paper's flatten head, and other widths, do.
  big = i2a.env_model_for(TINY.replace(reward_pool="flatten"), big_env, big_params, spec)
  flat = i2a.env_model_for(TINY.replace(reward_pool="flatten"), env, params, spec)
  with pytest.raises(ValueError, match="params do not fit"):
    i2a.check_compatible(flat, env, params, big.init(jax.random.key(0)))
  with pytest.raises(ValueError, match="params do not fit"):
    i2a.check_compatible(model, env, params, flat.init(jax.random.key(0)))
  i2a.check_compatible(model, env, params, p)   # the right params pass
  with pytest.raises(ValueError, match=r"obs has observation shape \(8, 8, 7\)"):
    model.apply(p, jnp.zeros((2, 8, 8, 7)), jnp.zeros((2,), jnp.int32))
  with pytest.raises(ValueError, match="obs holds non-finite"):
    model.apply(p, obs.at[0, 1, 1, 0].set(jnp.nan), jnp.zeros((2,), jnp.int32))
  with pytest.raises(ValueError, match=r"action must be in \[0, 4\)"):
    model.predict(p, obs, jnp.array([0, 4]))
  with pytest.raises(ValueError, match="action must be integer"):
    model.apply(p, obs, jnp.array([0.0, 1.0]))
  bad = data[1]._replace(reward=data[1].reward.at[3, 0].set(jnp.inf))
  with pytest.raises(ValueError, match=r"data.reward holds 1 non-finite"):
    i2a.make_trainer(model).chunk(None, i2a.flatten(bad))
  with pytest.raises(ValueError, match=r"batch.action must be in \[0, 4\)"):
    model.loss(p, data[1]._replace(action=data[1].action.at[0, 0].set(-1)))
  with pytest.raises(ValueError, match="reward_class must be in"):
    em.check_transitions(data[1]._replace(reward_class=data[1].reward_class.at[0, 0].set(-1)),
                         (7, 7, 7), 4, 4)
  with pytest.raises(ValueError, match="config.large_kernel"):
    i2a.make_env_model(TINY.replace(large_kernel=0), (7, 7, 7), 4, spec)
  with pytest.raises(ValueError, match="config.frame_likelihood must be one of"):
    i2a.make_env_model(TINY.replace(frame_likelihood="gaussian"), (7, 7, 7), 4, spec)
  with pytest.raises(ValueError, match="config.copy_path must be a bool"):
    i2a.make_env_model(TINY.replace(copy_path="yes"), (7, 7, 7), 4, spec)
  with pytest.raises(ValueError, match="config.reward_pool must be one of"):
    i2a.make_env_model(TINY.replace(reward_pool="mean"), (7, 7, 7), 4, spec)
  with pytest.raises(ValueError, match="config.reward_class_weights must have 4 entries"):
    i2a.make_env_model(TINY.replace(reward_class_weights=(1.0, 2.0)), (7, 7, 7), 4, spec)
  with pytest.raises(ValueError, match="config.reward_class_weights must be positive"):
    i2a.make_env_model(TINY.replace(reward_class_weights=(1.0, 0.0, 1.0, 1.0)), (7, 7, 7), 4,
                       spec)
  with pytest.raises(ValueError, match="config.batch_size"):
    i2a.make_trainer(model, i2a.TrainConfig(batch_size=0))
  with pytest.raises(ValueError, match="mode must be one of"):
    i2a.ImaginedEnv(model, mode="mean")
  with pytest.raises(ValueError, match=r"action must be in \[0, 4\); got 7"):
    i2a.ImaginedEnv(model).step(jax.random.key(0), obs[0], jnp.int32(7), p)
  # Under jit the action's value is unknown: an out-of-range action gives a NaN reward.
  out = jax.jit(i2a.ImaginedEnv(model).step)(jax.random.key(0), obs[0], jnp.int32(7), p)
  assert np.isnan(float(out[2]))
