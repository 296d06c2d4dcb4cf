"""Reinforcement-learning agents, one subpackage per algorithm family.

- `agents.sac`: SAC (Haarnoja et al. 2018) and SAC-D (MacGlashan et al. 2022, "Value function
  decomposition for iterative design of reinforcement learning agents"), with the
  reward-influence diagnostics.
- Shared pieces at the top: `agents.replay` (device replay buffer) and `agents.rollout` (the
  `lax.scan` rollout with automatic reset shared by on-policy agents and imagination).

Every agent is a factory returning a NamedTuple of pure functions, and every trainer follows one
contract, `make_trainer(config, env, env_params) -> Trainer(init, chunk)`, which
`launch.train_loop.train_loop` runs directly. See agents/README.md.
"""
from agents import replay, rollout, sac
from agents.replay import ReplayBuffer, ReplayState, replay_buffer

__all__ = ["ReplayBuffer", "ReplayState", "replay", "replay_buffer", "rollout", "sac"]
