"""Reinforcement-learning agents.

SAC-D (MacGlashan et al. 2022, "Value function decomposition for iterative design of
reinforcement learning agents") on top of SAC (Haarnoja et al. 2018), with the reward-influence
diagnostics. Every agent is a factory returning a NamedTuple of pure `init` / `act` / `update`
functions; training loops keep all gradient updates under `jit`. See agents/README.md.
"""
from agents.component_values import discounted_component_returns, evaluate_component_values
from agents.host_train import HostTrainer, HostTrainState, make_host_train, run_host_training
from agents.influence import agent_influence, reward_influence
from agents.replay import ReplayBuffer, ReplayState, replay_buffer
from agents.reward_components import check_step, components_from_info
from agents.sac import (
    Agent,
    AgentState,
    SacConfig,
    Transition,
    make_sac,
    make_soft_actor_critic,
    sac_critic_target,
)
from agents.sac_d import decomposed_critic_targets, make_sac_d, num_value_heads
from agents.tanh_gaussian import sample_and_log_prob
from agents.train import TrainConfig, Trainer, TrainState, episode_returns, make_train

__all__ = [
    "Agent", "AgentState", "HostTrainState", "HostTrainer", "ReplayBuffer", "ReplayState",
    "SacConfig", "TrainConfig", "TrainState", "Trainer", "Transition", "agent_influence",
    "check_step", "components_from_info", "decomposed_critic_targets",
    "discounted_component_returns", "episode_returns", "evaluate_component_values",
    "make_host_train", "make_sac", "make_sac_d", "make_soft_actor_critic", "make_train",
    "num_value_heads", "replay_buffer", "reward_influence", "run_host_training",
    "sac_critic_target", "sample_and_log_prob",
]
