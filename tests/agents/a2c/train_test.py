"""A2C trainer: bad input refused by name, vmapped seeds, launch.train_loop, learning on a chain."""
import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest

from agents import a2c
from agents.a2c import networks
from envs import Spaceship
from launch import parallel, train_loop
from launch.workdir import Workdir
from tests.agents import tiny_envs

TINY = dict(num_envs=4, rollout_length=3, updates_per_chunk=2, num_chunks=2, hidden_size=8)


def test_patch_conv_equals_flax_conv():
  x = jax.random.normal(jax.random.key(0), (2, 7, 9, 3))
  for k, s in ((3, 1), (3, 2), (2, 2)):
    conv = nn.Conv(5, (k, k), (s, s), padding="SAME")
    params = conv.init(jax.random.key(1), x)
    ours = networks.PatchConv(5, k, s).apply(params, x)
    np.testing.assert_allclose(ours, conv.apply(params, x), rtol=1e-5, atol=1e-5)


# ---- bad input --------------------------------------------------------------------------------

def test_continuous_actions_are_refused_by_environment_name():
  env = Spaceship()
  with pytest.raises(ValueError, match=r"discrete action space; environment 'spaceship' has Box"):
    a2c.make_trainer(a2c.default_config(**TINY), env, env.default_params, env_name="spaceship")


@pytest.mark.parametrize("field,value,message", [
    ("num_minibatches", 3, r"config.num_minibatches \(3\) must divide config.num_envs \(4\)"),
    ("rollout_length", 0, r"config.rollout_length must be a positive integer; got 0"),
    ("num_envs", 2.5, r"config.num_envs must be a positive integer; got 2.5"),
    ("advantage", "td", r"config.advantage must be one of \('gae', 'n_step'\); got 'td'"),
    ("optimizer", "sgd", r"config.optimizer must be one of"),
    ("discount", 1.5, r"config.discount must be in \[0.0, 1.0\]; got 1.5"),
    ("learning_rate", 0.0, r"config.learning_rate must be positive"),
    ("entropy_coef", -0.1, r"config.entropy_coef must be >= 0"),
    ("reward_scale", 0.0, r"config.reward_scale must be positive; got 0.0"),
    ("lr_schedule", "cosine", r"config.lr_schedule must be one of \('constant', 'linear'\)"),
    ("kernel_sizes", (3,), r"config.conv_features, config.kernel_sizes and config.strides"),
])
def test_bad_config_names_the_field(field, value, message):
  config = a2c.default_config(**TINY).replace(**{field: value})
  env = tiny_envs.Counter()
  with pytest.raises(ValueError, match=message):
    a2c.make_trainer(config, env, env.default_params)


@pytest.mark.parametrize("what", ["reward", "obs"])
def test_non_finite_first_step_is_caught_before_compiling(what):
  env = tiny_envs.BadValues(what, bad_from=1)
  name = "reward" if what == "reward" else "observation after a step"
  with pytest.raises(ValueError, match=rf"environment 'bad' returned a non-finite {name}"):
    a2c.make_trainer(a2c.default_config(**TINY), env, env.default_params, env_name="bad")


@pytest.mark.parametrize("what,message", [("reward", "a non-finite reward"),
                                          ("obs", "a non-finite observation")])
def test_non_finite_later_is_raised_after_the_chunk(what, message):
  """NaN from the 3rd step of an episode on: the probe passes, the first update meets it."""
  env = tiny_envs.BadValues(what, bad_from=3)
  trainer = a2c.make_trainer(a2c.default_config(**TINY), env, env.default_params, env_name="bad")
  _, metrics = jax.jit(trainer.chunk)(trainer.init(jax.random.key(0)))
  with pytest.raises(ValueError, match=rf"environment 'bad': {message} during update 0"):
    a2c.check_finite(jax.device_get(metrics), "bad")
  # Seeds axis: the seed index is named too.
  seeds = jax.tree.map(lambda x: np.stack([np.zeros_like(x), x]), jax.device_get(metrics))
  with pytest.raises(ValueError, match=r"update 0 of these metrics \(seed index 1\)"):
    a2c.check_finite(seeds, "bad")


# ---- seeds and the train loop -----------------------------------------------------------------

@pytest.fixture(scope="module")
def counter_trainer():
  env = tiny_envs.Counter(4)
  return a2c.make_trainer(a2c.default_config(**TINY), env, env.default_params)


def test_vmapped_train_equals_single_seeds(counter_trainer):
  keys = jax.random.split(jax.random.key(3), 2)
  states, metrics = jax.jit(jax.vmap(counter_trainer.train))(keys)
  assert metrics["loss"].shape == (2, TINY["updates_per_chunk"] * TINY["num_chunks"])
  np.testing.assert_array_equal(metrics["frames"][0, -1], 4 * 3 * 4)
  train = jax.jit(counter_trainer.train)
  for s in range(2):
    single, single_metrics = train(keys[s])
    for a, b in zip(jax.tree.leaves(single.params),
                    jax.tree.leaves(jax.tree.map(lambda x: x[s], states.params))):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single_metrics["loss"], metrics["loss"][s], rtol=1e-5, atol=1e-6)
  # Different seeds, different runs.
  assert not np.allclose(metrics["loss"][0], metrics["loss"][1])


def test_train_loop_runs_init_and_chunk_directly(counter_trainer, tmp_path):
  """launch.train_loop with seed_keys ends where jax.vmap(train) ends, and resumes."""
  keys = jax.random.split(jax.random.key(3), 2)
  wd = Workdir(tmp_path, ml_collections.ConfigDict({"seed": 0}))
  state, stats = train_loop.train_loop(wd, parallel.data_mesh(), counter_trainer.init,
                                       counter_trainer.chunk, TINY["num_chunks"],
                                       name="a2c", seed_keys=keys, progress=False)
  assert stats.chunks_run == TINY["num_chunks"]
  expected, expected_metrics = jax.jit(jax.vmap(counter_trainer.train))(keys)
  for a, b in zip(jax.tree.leaves(jax.device_get(state.params)),
                  jax.tree.leaves(expected.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  history = train_loop.load_history(wd, "a2c")
  np.testing.assert_allclose(history["loss"], expected_metrics["loss"], rtol=1e-5, atol=1e-6)
  # A second call finds the finished run and compiles nothing.
  _, again = train_loop.train_loop(wd, parallel.data_mesh(), counter_trainer.init,
                                   counter_trainer.chunk, TINY["num_chunks"], name="a2c",
                                   seed_keys=keys, progress=False)
  assert again.chunks_run == 0 and again.resumed_from_chunk == TINY["num_chunks"]


# ---- reward scale and learning-rate schedule --------------------------------------------------

class _HalfRewardCounter(tiny_envs.Counter):
  """`Counter` with every reward halved (a power of two: the product is exact in float32)."""

  def step_env(self, key, state, action, params):
    obs, state, reward, terminated, truncated, info = super().step_env(key, state, action, params)
    return obs, state, 0.5 * reward, terminated, truncated, info


def test_reward_scale_equals_training_on_scaled_rewards():
  """reward_scale = 0.5 on `Counter` and reward_scale = 1 on its halved-reward twin take the same
  actions (the policy never sees rewards) and so end with the same parameters."""
  config = a2c.default_config(**TINY)
  key = jax.random.key(5)

  def params_after_training(env, scale):
    trainer = a2c.make_trainer(config.replace(reward_scale=scale), env, env.default_params)
    return jax.device_get(jax.jit(trainer.train)(key)[0].params)

  scaled = params_after_training(tiny_envs.Counter(4), 0.5)
  twin = params_after_training(_HalfRewardCounter(4), 1.0)
  unscaled = params_after_training(tiny_envs.Counter(4), 1.0)
  for a, b in zip(jax.tree.leaves(scaled), jax.tree.leaves(twin)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert not all(np.allclose(a, b) for a, b in zip(jax.tree.leaves(scaled),
                                                  jax.tree.leaves(unscaled)))


def test_linear_learning_rate_falls_to_zero_over_the_run():
  config = a2c.default_config(**TINY).replace(learning_rate=1e-3, lr_schedule="linear",
                                              num_chunks=4, updates_per_chunk=5,
                                              num_minibatches=2)  # 40 gradient steps
  schedule = a2c.learning_rate(config)
  np.testing.assert_allclose([schedule(0), schedule(10), schedule(30), schedule(40),
                              schedule(50)], [1e-3, 7.5e-4, 2.5e-4, 0.0, 0.0], atol=1e-12)
  assert a2c.learning_rate(config.replace(lr_schedule="constant")) == 1e-3


# ---- statistics helpers -----------------------------------------------------------------------

def test_episode_statistics_by_hand():
  metrics = {"episodes": np.array([1, 0, 2, 0.]), "episode_return_sum": np.array([3, 0, 4, 0.]),
             "episode_length_sum": np.array([5, 0, 6, 0.]),
             "episode_solved_sum": np.array([1, 0, 1, 0.]), "frames": np.array([1, 2, 3, 4.])}
  stats = a2c.episode_statistics(metrics, 2)
  np.testing.assert_allclose(stats["return"], [3.0, 2.0])
  np.testing.assert_allclose(stats["length"], [5.0, 3.0])
  np.testing.assert_allclose(stats["solve_rate"], [1.0, 0.5])
  np.testing.assert_allclose(stats["frames"], [2.0, 4.0])
  stats = a2c.episode_statistics(metrics, 1)
  assert np.isnan(stats["return"][1])


def test_complete_episodes_counts_each_start_once():
  """T = 6, limit 3: episodes must start at steps 0..2. Env 0: lengths 2, 3 (ends at steps 1,
  4); env 1: one episode of length 3 ending at step 2, then one of length 3 starting at step 3
  (ends at 5, excluded: it started after step 2)."""
  done = np.zeros((6, 2), bool)
  length = np.zeros((6, 2), int)
  done[1, 0], length[1, 0] = True, 2
  done[4, 0], length[4, 0] = True, 3
  done[2, 1], length[2, 1] = True, 3
  done[5, 1], length[5, 1] = True, 3
  ret = np.arange(12.0).reshape(6, 2)
  out = a2c.complete_episodes({"done": done, "length": length, "return": ret,
                               "solved": done}, 3)
  np.testing.assert_array_equal(np.sort(out["return"]), [2.0, 5.0, 8.0])
  with pytest.raises(ValueError, match="more steps"):
    a2c.complete_episodes({"done": done, "length": length, "return": ret, "solved": done}, 6)


# ---- learning ---------------------------------------------------------------------------------

def test_learns_the_chain_far_better_than_random():
  """Chain(6), 30-step limit: the shortest episode is 5 steps (always right); a uniform policy
  needs about 25 steps on average (a reflected walk) and is often cut at 30. After 300 updates
  A2C's greedy-ish sampled policy must average under 7 steps with return 1 every episode."""
  env = tiny_envs.Chain(6)
  params = env.default_params.replace(max_steps=30)
  config = a2c.default_config(num_envs=8, rollout_length=5, updates_per_chunk=100, num_chunks=3,
                              hidden_size=32, learning_rate=3e-3, entropy_coef=0.001,
                              discount=0.9)
  trainer = a2c.make_trainer(config, env, params, env_name="chain")
  state, metrics = jax.jit(trainer.train)(jax.random.key(0))
  a2c.check_finite(jax.device_get(metrics), "chain")

  def evaluate(policy, key):
    out = jax.jit(lambda k: a2c.evaluation_rollout(policy, env, params, k, 16, 61))(key)
    return a2c.complete_episodes(jax.device_get(out), 30)

  ours = evaluate(lambda k, obs: trainer.policy(state.params, k, obs), jax.random.key(1))
  uniform = evaluate(lambda k, obs: jax.random.randint(k, (obs.shape[0],), 0, 2),
                     jax.random.key(1))
  assert len(ours["length"]) >= 16 and len(uniform["length"]) >= 16
  assert ours["length"].mean() < 7.0 and ours["return"].mean() == 1.0
  assert uniform["length"].mean() > 15.0


# ---- environment params refreshed between chunks (Sokoban level stream) ------------------------

def test_refresh_env_params_runs_at_init_and_before_every_chunk(counter_trainer):
  """A refresh that lengthens `Counter`'s time limit by one: after init and 2 chunks each seed's
  params hold 6 + 3, and the 4-step walk started at 0..3 with limit 9 never truncates."""
  env = tiny_envs.Counter(4)
  refresh = lambda k, p: p.replace(max_steps=p.max_steps + 1)  # noqa: E731
  trainer = a2c.make_trainer(a2c.default_config(**TINY), env, env.default_params,
                             refresh_env_params=refresh)
  states, _ = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 2))
  np.testing.assert_array_equal(states.env_params.max_steps, [9, 9])
  assert counter_trainer.init(jax.random.key(0)).env_params is None  # no refresh: not carried


@pytest.mark.slow  # compiles the level generator: minutes on a loaded CPU; fast counterpart above
def test_level_stream_refilled_every_chunk_counts_dry_resets_exactly():
  """Sokoban 7x7/2 with a level stream, 2-step episodes: `init` fills 8 levels per seed (its 4
  environments take 4 at once), each chunk adds 8 more and then plays 4 x 2 x 3 = 24 steps, so
  about 12 resets, more than the levels left: every reset past them finds the stream dry. The
  dry count per chunk must be exactly max(0, resets - available), seeds' streams must differ,
  and no stream level may be played twice (each reset takes a new index, so the stream's
  counter equals initial resets + non-dry resets)."""
  from envs import Sokoban
  env = Sokoban(7, 7, 2)
  params = env.stream_params(None, capacity=32, max_steps=2)
  config = a2c.default_config(num_envs=4, rollout_length=3, updates_per_chunk=2, num_chunks=2,
                              hidden_size=8, conv_features=(4,), kernel_sizes=(3,),
                              strides=(2,))
  trainer = a2c.make_trainer(config, env, params, env_name="sokoban-7x7-2",
                             refresh_env_params=lambda k, p: env.refill_stream(k, p, 8))
  states, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.key(0), 2))
  metrics = jax.device_get(metrics)
  resets = metrics["episodes"].reshape(2, 2, 2).sum(-1)     # [seed, chunk]
  dry = metrics["stream_dry"].reshape(2, 2, 2).sum(-1)
  for s in range(2):
    available = 8 - 4                                      # after init's 4 resets
    for c in range(2):
      available += 8
      assert dry[s, c] == max(0, resets[s, c] - available)
      available = max(0, available - resets[s, c])
  assert dry.sum() > 0 and (resets - dry).sum() > 0        # both cases met
  stream = states.env_params.stream
  np.testing.assert_array_equal(stream.generated, [24, 24])  # init + 2 chunks, 8 each
  np.testing.assert_array_equal(stream.end, [24, 24])        # all valid (the count above uses it)
  taken = np.asarray(states.rollout.env_state.env_state.stream_next)[:, 0]
  np.testing.assert_array_equal(taken, 4 + (resets - dry).sum(-1))
  # The seeds' streams hold different levels (per-seed refill keys).
  assert not np.array_equal(stream.levels.boxes[0], stream.levels.boxes[1])
