"""Imagination-augmented agents (I2A; Weber et al. 2017, *Imagination-augmented agents for deep
reinforcement learning*). So far: the action-conditional environment model (Sec. 3.1, App. B),
its data collection, training and multi-step accuracy."""
from agents.i2a.env_model import (
    EnvModelConfig,
    EnvModelFns,
    ImaginedEnv,
    RewardSpec,
    Transitions,
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

__all__ = [
    "EnvModelConfig", "EnvModelFns", "ImaginedEnv", "RewardSpec", "TrainConfig", "Transitions",
    "check_compatible", "collect_transitions", "copy_predict", "env_model_for", "flatten",
    "make_env_model", "make_trainer", "minipacman_event_spec", "multi_step_accuracy",
    "pool_and_inject", "sokoban_reward_spec", "uniform_policy",
]
