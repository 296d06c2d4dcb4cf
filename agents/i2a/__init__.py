"""Imagination-augmented agents (I2A; Weber et al. 2017, *Imagination-augmented agents for deep
reinforcement learning*). So far: the action-conditional environment model (Sec. 3.1, App. B),
its data collection, training and multi-step accuracy; the imagination core, rollout policy and
its distillation, rollout encoder, aggregator and I2A network (Sec. 3, App. B); the trainer of
I2A, the copy-model agent and the large standard agent (`make_agent_trainer`, Sec. 3-4); the
Monte-Carlo search agent with the same model (Sec. 4.2, `make_mc_search_policy`)."""
from agents.i2a.env_model import (
    EnvModelConfig,
    EnvModelFns,
    ImaginedEnv,
    RewardSpec,
    Transitions,
    balanced_reward_weights,
    check_compatible,
    copy_predict,
    env_model_for,
    make_env_model,
    minipacman_event_spec,
    multi_step_accuracy,
    pool_and_inject,
    sokoban_reward_spec,
)
from agents.i2a.env_model_train import (
    TrainConfig,
    collect_transitions,
    flatten,
    make_trainer,
    uniform_policy,
)
from agents.i2a.imagination import (
    CopyModelEnv,
    I2AConfig,
    I2ANet,
    I2AOutput,
    Imagination,
    RolloutEncoder,
    RolloutPolicy,
    aggregate,
    distillation_loss,
    i2a_loss,
    imagine,
    make_i2a_network,
)
from agents.i2a.mc_search import make_mc_search_policy, mc_action_values, standard_agent_parts
from agents.i2a.train import (
    AgentConfig,
    AgentTrainer,
    i2a_param_count,
    make_agent_trainer,
    standard_hidden_size,
    standard_param_count,
)

__all__ = [
    "CopyModelEnv", "EnvModelConfig", "EnvModelFns", "I2AConfig", "I2ANet", "I2AOutput",
    "Imagination", "ImaginedEnv", "RewardSpec", "RolloutEncoder", "RolloutPolicy", "TrainConfig",
    "Transitions", "aggregate", "balanced_reward_weights", "distillation_loss", "i2a_loss",
    "imagine", "make_i2a_network",
    "check_compatible", "collect_transitions", "copy_predict", "env_model_for", "flatten",
    "make_env_model", "make_trainer", "minipacman_event_spec", "multi_step_accuracy",
    "pool_and_inject", "sokoban_reward_spec", "uniform_policy",
    "AgentConfig", "AgentTrainer", "i2a_param_count", "make_agent_trainer",
    "standard_hidden_size", "standard_param_count", "make_mc_search_policy", "mc_action_values",
    "standard_agent_parts",
]
