"""A state-space model behind the gymnax `step` signature, for imagination-based agents (B18
Sec. 5: I2A querying an SSM).

`LatentEnv(model, output)` steps the model's latent state: `step(key, state, action, params)
-> (obs, state, reward, terminated, truncated, info)` with `state = s_t [h, w, S]` (one
environment; `vmap` for a batch, as `envs` environments), `params` the model's params and
`action` one integer (`k = 1`) or `k` integers (a jumpy model: one model step per `k` actions).
`obs` is what the agent's rollout encoder reads: "latent" (default, the state itself: no frame
is decoded, the rollouts B18 times as fast) or "probs" (the decoded per-tile probabilities
`[H, W, C]`, what I2A's encoder reads from its own model). Latents are drawn from the prior with
the step's key. Episodes never end (fixed-depth rollouts, as `agents.i2a.env_model.ImaginedEnv`).

An `agents.i2a`-side adapter needs only `carry(obs_context[B, 3, H, W, C])` returning
`agents.rollout.RolloutCarry(obs, state)` from `model.observe` (the three real frames an agent
holds), which `latent_dynamics` cannot build itself (it may not import `agents`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from latent_dynamics.env_models.models import SSMFns, frame_probs

OUTPUTS = ("latent", "probs")


class LatentEnv:
  """See the module docstring."""

  def __init__(self, model: SSMFns, output: str = "latent"):
    if output not in OUTPUTS:
      raise ValueError(f"output must be one of {OUTPUTS}; got {output!r}.")
    self.model, self.output = model, output
    self.num_actions = model.num_actions
    self.jump = model.config.jump

  def initial_state(self, params, context: jax.Array) -> jax.Array:
    """`s_0[B, h, w, S]` from `context[B, 3, H, W, C]` (`model.observe`)."""
    return self.model.observe(params, context)

  def step(self, key, state, action, params):
    action = jnp.asarray(action)
    if not jnp.issubdtype(action.dtype, jnp.integer):
      raise ValueError(f"action must be integer; got dtype {action.dtype}.")
    action_k = jnp.reshape(action, (1, self.jump))
    s, logits, reward = self.model.step(params, state[None], action_k, key)
    s, reward = s[0], reward[0]
    obs = s if self.output == "latent" else frame_probs(logits[0],
                                                        self.model.config.frame_likelihood)
    false = jnp.zeros((), bool)
    return obs, s, reward, false, false, {}
