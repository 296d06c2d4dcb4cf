"""A state-space environment model (Buesing et al. 2018, `latent_dynamics.env_models`) as I2A's
imagination environment: B18 Sec. 5, I2A querying an SSM.

`SSMEnv(model, output)` has what `agents.i2a.imagination.imagine` and `I2ANet` read of an
imagination environment, and what `agents.i2a.train` checks of an environment model:

- `carry(obs[N, H, W, C], params) -> RolloutCarry(s_0, first_obs)`: the SSM's initial state from
  three frames (B18 App. A: `s_0` reads `o_{-2}, o_{-1}, o_0`). [O] The agent holds one real
  observation (I2A's agents, the standard agent and RAR read single frames), so the context is
  the current observation repeated three times, `(o_t, o_t, o_t)`; the launcher
  (`launch.agents.i2a_ssm`) trains the SSM on contexts of that form (`repeat_context`), so
  the initial state it meets in the agent is the kind it was trained on. The alternative, a
  frame stack of the last three real observations, would change the observation all three
  agents read and, at an episode's first step, repeat the frame anyway.
- `step(key, s, action, params)`: `latent_dynamics.env_models.LatentEnv`'s (one action per model
  step; latents from the prior with the step's key, so an sSSM's rollouts differ across keys).
- `output`: what the rollout encoder and the rollout policy pi_hat read of an imagined step:
  "latent" (default; the state `s_t [h, w, S]`, no frame decoded: B18's fast rollouts) or
  "probs" (the decoded per-tile probabilities `[H, W, C]`, a frame-shaped input like RAR's).
  `imagined_shape` is that shape (the encoder reads it, not the real observation's).
- `policy_input(obs, params)`: what pi_hat reads at the real observation, for its distillation
  target: the same representation as in imagination (`s_0` for "latent", the frame for
  "probs"), so pi_hat is one network on one input space. [O] B18 Sec. 5 has the rollout policy
  act on the model's state; we use that for "latent".
- `obs_shape`, `num_actions`, `check_params(params)` (`agents.i2a.env_model.check_compatible`).

The model's params are frozen in I2A (`stop_gradient`), as RAR's.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from agents import rollout as rollout_lib
from latent_dynamics.env_models import LatentEnv, SSMFns
from latent_dynamics.env_models.models import NUM_CONTEXT

OUTPUTS = ("latent", "probs")


def repeat_context(obs: jax.Array) -> jax.Array:
  """`[N, H, W, C] -> [N, 3, H, W, C]`: the current observation as the SSM's three context
  frames (module doc, [O])."""
  return jnp.repeat(jnp.asarray(obs, jnp.float32)[:, None], NUM_CONTEXT, axis=1)


class SSMEnv:
  """See the module docstring."""
  carry_reads_params = True   # `carry(obs, params)`: the initial state needs the model's params

  def __init__(self, model: SSMFns, output: str = "latent"):
    if output not in OUTPUTS:
      raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}.")
    if model.config.jump != 1:
      raise ValueError(f"I2A's imagination takes one action per step; a jumpy model (jump = "
                       f"{model.config.jump}) needs k actions per step.")
    self.model, self.output = model, output
    self.latent_env = LatentEnv(model, output)
    self.obs_shape = tuple(int(s) for s in model.obs_shape)
    self.num_actions = int(model.num_actions)
    self.imagined_shape = (tuple(int(s) for s in model.state_shape) if output == "latent"
                           else self.obs_shape)
    self._param_shapes = jax.eval_shape(model.init, jax.random.key(0))

  def _check_obs(self, obs):
    if obs.ndim != 4 or tuple(obs.shape[1:]) != self.obs_shape:
      raise ValueError(f"obs must be [N, *{self.obs_shape}] (the SSM's obs_shape); got "
                       f"{tuple(obs.shape)}.")

  def carry(self, obs: jax.Array, params) -> rollout_lib.RolloutCarry:
    obs = jnp.asarray(obs, jnp.float32)
    self._check_obs(obs)
    s0 = self.model.observe(params, repeat_context(obs))
    return rollout_lib.RolloutCarry(s0, s0 if self.output == "latent" else obs)

  def policy_input(self, obs: jax.Array, params) -> jax.Array:
    obs = jnp.asarray(obs, jnp.float32)
    self._check_obs(obs)
    if self.output == "latent":
      return self.model.observe(params, repeat_context(obs))
    return obs

  def step(self, key, state, action, params):
    return self.latent_env.step(key, state, action, params)

  def check_params(self, params) -> None:
    """Raises a `ValueError` if `params` are not this model's (structure or a leaf's shape)."""
    want = jax.tree.structure(self._param_shapes)
    if jax.tree.structure(params) != want:
      raise ValueError("model params do not fit the SSM: another tree structure (params of "
                       "another model or a corrupted checkpoint).")
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(self._param_shapes)):
      if tuple(np.shape(a)) != tuple(b.shape):
        raise ValueError(f"model params do not fit the SSM: a leaf of shape {np.shape(a)} "
                         f"where {b.shape} is expected.")
