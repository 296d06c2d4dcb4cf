"""Tests common to every JAX environment: params as a traced jit argument, specs, finiteness."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import maze, minipacman, po_sokoban, sokoban, spaceship
from envs import sokoban_levels as sl

TINY = "#######\n#     #\n# @$. #\n#     #\n#######"


def _tiny_sokoban(cls):
  env = cls(5, 7, num_boxes=1)
  return env, env.make_params(jax.tree.map(lambda x: x[None], sl.parse_level(TINY)))


CASES = {
    "sokoban": lambda: _tiny_sokoban(sokoban.Sokoban),
    "po_sokoban": lambda: _tiny_sokoban(po_sokoban.POSokoban),
    "minipacman": lambda: (minipacman.MiniPacman("hunt"), None),
    "spaceship": lambda: (spaceship.Spaceship(), None),
    "maze": lambda: (maze.Maze(), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_params_are_a_traced_argument(name):
  env, params = CASES[name]()
  params = env.default_params if params is None else params
  obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
  assert env.observation_space(params).contains(np.asarray(obs))
  action = env.action_space(params).sample(jax.random.PRNGKey(1))
  assert env.action_space(params).contains(np.asarray(action))
  out = jax.jit(env.step)(jax.random.PRNGKey(2), state, action, params)
  obs2, _, reward, terminated, truncated, info = out
  assert obs2.shape == obs.shape and obs2.dtype == obs.dtype
  assert reward.dtype == jnp.float32 and np.isfinite(float(reward))
  assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
  # The state keeps its pytree structure, shapes and dtypes through a step (scan-able).
  new_state = out[1]
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
    assert a.shape == b.shape and a.dtype == b.dtype
