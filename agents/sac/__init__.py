"""SAC (Haarnoja et al. 2018) and SAC-D (MacGlashan et al. 2022) with reward-influence diagnostics.

`make_sac` / `make_sac_d` return an `Agent(init, act, update, critic, num_heads)` of pure
functions; `train.make_trainer(config, env, env_params)` is the one-jit trainer for
gymnax-signature environments and `host_train.make_host_train` the device side of the envpool
host loop (`launch.host_loop`). See agents/README.md for the equation-to-function table.
"""
from agents.sac.component_values import discounted_component_returns, evaluate_component_values
from agents.sac.host_train import HostTrainer, HostTrainState, make_host_train, run_host_training
from agents.sac.influence import agent_influence, reward_influence
from agents.sac.reward_components import check_step, components_from_info
from agents.sac.sac import (
    Agent,
    AgentState,
    SacConfig,
    Transition,
    make_sac,
    make_soft_actor_critic,
    sac_critic_target,
)
from agents.sac.sac_d import decomposed_critic_targets, make_sac_d, num_value_heads
from agents.sac.tanh_gaussian import sample_and_log_prob
from agents.sac.train import TrainConfig, Trainer, TrainState, episode_returns, make_trainer

__all__ = [
    "Agent", "AgentState", "HostTrainState", "HostTrainer", "SacConfig", "TrainConfig",
    "TrainState", "Trainer", "Transition", "agent_influence", "check_step",
    "components_from_info", "decomposed_critic_targets", "discounted_component_returns",
    "episode_returns", "evaluate_component_values", "make_host_train", "make_sac", "make_sac_d",
    "make_soft_actor_critic", "make_trainer", "num_value_heads", "reward_influence",
    "run_host_training", "sac_critic_target", "sample_and_log_prob",
]
