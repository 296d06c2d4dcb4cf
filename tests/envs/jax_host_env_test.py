"""Tests of `envs.host.jax_env.JaxHostEnv`: a jitted, scanned, vmapped rollout through the
callbacks equals stepping the same envpool batch by hand (automatic reset at once, our time
limit); nested vmaps (seeds x environments) make one batch; interleaved rollouts of one size are
refused by name and a restored state restarts its episodes; the A2C trainer runs on MsPacman
unchanged."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("envpool")

from agents import a2c  # noqa: E402
from agents import rollout as rollout_lib  # noqa: E402
from envs.host import atari_frames, jax_env  # noqa: E402
from envs.host.envpool_env import HostEnv, atari_rom_path  # noqa: E402

pytestmark = pytest.mark.skipif(atari_rom_path("MsPacman") is None,
                                reason="envpool's MsPacman ROM is not installed")
TASK, B, T, LIMIT = "MsPacman-v5", 3, 12, 5
PALETTE = np.array([[0, 0, 0], [228, 111, 111], [187, 187, 53], [210, 164, 74]], np.uint8)


def _small(raw):
  """A cheap host preprocessing for the tests: 10x10 palette tiles."""
  return atari_frames.one_hot(atari_frames.quantise(
      atari_frames.downsample(atari_frames.to_hwc(raw), 10), PALETTE), len(PALETTE))


def _make(seed=4):
  return jax_env.JaxHostEnv(TASK, seed, preprocess=_small, max_steps=LIMIT, palette=PALETTE,
                            img_height=210, img_width=160, stack_num=1, gray_scale=False)


def test_jitted_rollout_equals_stepping_by_hand():
  actions = np.random.default_rng(0).integers(0, 9, (T, B)).astype(np.int32)
  env = _make()
  carry = jax.jit(lambda k: rollout_lib.reset(env, env.default_params, k, B))(
      jax.random.key(0))

  def run(carry):
    def body(c, a):
      obs, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
          jax.random.split(jax.random.key(1), B), c.env_state, a, env.default_params)
      return rollout_lib.RolloutCarry(state, obs), (obs, reward, term, trunc)
    return jax.lax.scan(body, carry, jnp.asarray(actions))

  _, (obs, reward, term, trunc) = jax.jit(run)(carry)
  assert env.steps_taken == T

  # By hand: the same envpool seed (the env's second batch: 4 + 1000), the same actions, reset
  # at once after LIMIT agent steps.
  host = HostEnv(TASK, num_envs=B, seed=1004, img_height=210, img_width=160, stack_num=1,
                 gray_scale=False)
  raw, _ = host.reset()
  np.testing.assert_array_equal(np.asarray(carry.obs), _small(np.asarray(raw)))
  elapsed = np.zeros(B, int)
  for t in range(T):
    out = host.step(actions[t])
    elapsed += 1
    done = out.terminated | (elapsed >= LIMIT)
    frame = np.array(out.obs)
    if done.any():
      frame[done] = host.reset_some(np.nonzero(done)[0])
    elapsed[done] = 0
    np.testing.assert_array_equal(np.asarray(obs[t]), _small(frame), err_msg=f"t={t}")
    np.testing.assert_array_equal(np.asarray(reward[t]), out.reward)
    np.testing.assert_array_equal(np.asarray(term[t]), out.terminated)
    np.testing.assert_array_equal(np.asarray(trunc[t]), (elapsed == 0) & ~out.terminated)
  # LIMIT = 5 within 12 steps: every environment was truncated twice, at steps 5 and 10.
  np.testing.assert_array_equal(np.asarray(trunc).sum(0), [2, 2, 2])
  env.close()
  host.close()


def test_reset_some_resets_now_not_on_the_next_step():
  host = HostEnv(TASK, num_envs=2, seed=1)
  host.reset()
  for _ in range(3):
    host.step(np.array([1, 2], np.int32))
  first = host.reset_some([1])
  assert first.shape[0] == 1
  out = host.step(np.array([1, 2], np.int32))
  assert not out.info["reset_step"].any()
  np.testing.assert_array_equal(out.info["elapsed_step"], [4, 1])
  with pytest.raises(ValueError, match="distinct indices"):
    host.reset_some([0, 0])
  host.close()


def _step_all(env, carry, action):
  n = carry.obs.shape[0]
  obs, state, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
      jax.random.split(jax.random.key(1), n), carry.env_state, jnp.full((n,), action, jnp.int32),
      env.default_params)
  return rollout_lib.RolloutCarry(state, obs)


def test_interleaved_rollouts_of_one_size_are_refused_and_restored_states_restart():
  env = _make()
  reset = jax.jit(lambda k: rollout_lib.reset(env, env.default_params, k, B))
  step = jax.jit(lambda c: _step_all(env, c, 2))
  first = reset(jax.random.key(0))
  first = step(first)
  second = reset(jax.random.key(1))   # the same batch of B, reset under `first`
  with pytest.raises(Exception, match=f"batch of {B} environments was reset by another"):
    jax.block_until_ready(step(first))
  stepped = jax.block_until_ready(step(second))
  with pytest.raises(Exception, match="stepped out of order"):
    jax.block_until_ready(step(second))   # the same state again: a branch
  jax.block_until_ready(step(stepped))
  # A state from another process (generation outside this process's range): restarted.
  foreign = second._replace(env_state=second.env_state.replace(
      generation=jnp.full((B,), env._base - 7, jnp.int32)))
  before = env.steps_taken
  jax.block_until_ready(step(foreign))
  assert env.steps_taken == before + 1
  assert env._batches[B].generation == env._base - 7
  env.close()


def test_nested_vmap_over_seeds_is_one_batch():
  env = _make()
  keys = jax.random.split(jax.random.key(0), 2)
  carry = jax.jit(jax.vmap(lambda k: rollout_lib.reset(env, env.default_params, k, B)))(keys)
  assert carry.obs.shape == (2, B) + env.obs_shape
  np.testing.assert_array_equal(np.asarray(carry.env_state.row),
                                np.arange(2 * B).reshape(2, B))
  carry = jax.jit(jax.vmap(lambda c: _step_all(env, c, 1)))(carry)
  assert 2 * B in env._batches and env.steps_taken == 1
  env.close()


def test_a2c_trains_on_mspacman_through_the_callbacks():
  env = _make()
  config = a2c.default_config(num_envs=B, rollout_length=4, updates_per_chunk=3, num_chunks=1,
                              conv_features=(4,), kernel_sizes=(3,), strides=(1,),
                              hidden_size=8)
  trainer = a2c.make_trainer(config, env, env.default_params, env_name=TASK)
  state = trainer.init(jax.random.key(0))
  state, metrics = jax.jit(trainer.chunk)(state)
  assert int(state.frames) == B * 4 * 3
  assert np.all(np.isfinite(np.asarray(metrics["loss"])))
  # The probe's step (a batch of one) and 12 rollout steps of the batch of B.
  assert env.steps_taken == 1 + 4 * 3 and set(env._batches) == {1, B}
  env.close()


def test_record_policy_frames_by_hand():
  env = _make(seed=9)
  frames = jax_env.record_policy_frames(env, lambda k, obs: jnp.full(obs.shape[:1], 3),
                                        jax.random.key(0), B, 7)
  host = HostEnv(TASK, num_envs=B, seed=1009, img_height=210, img_width=160, stack_num=1,
                 gray_scale=False)
  small = lambda raw: atari_frames.quantise(  # noqa: E731
      atari_frames.downsample(atari_frames.to_hwc(raw), 10), PALETTE)
  raw, _ = host.reset()
  np.testing.assert_array_equal(frames.obs[0], small(np.asarray(raw)))
  for t in range(7):
    out = host.step(np.full(B, 3, np.int32))
    frame = np.array(out.obs)
    done = out.terminated | ((t + 1) % LIMIT == 0)
    if done.any():
      frame[done] = host.reset_some(np.nonzero(done)[0])
    np.testing.assert_array_equal(frames.obs[t + 1], small(frame))
    np.testing.assert_array_equal(frames.frame_valid[t], 1.0 - done)
  assert frames.action.shape == (7, B) and np.all(frames.action == 3)
  np.testing.assert_array_equal(frames.palette, PALETTE)
  host.close()
  env.close()
