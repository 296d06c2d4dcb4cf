"""A2C: synchronous advantage actor-critic (Mnih et al. 2016), the I2A paper's standard agent.

Weber et al. 2017 (I2A), Sec. 4, compare against this model-free agent: a conv torso and a fully
connected layer with policy and value heads, trained on many environments in parallel with
n-step (or GAE) advantages, an entropy bonus and RMSprop. The policy-gradient term is a
`stochastic_graphs` surrogate (actions as score-function nodes, the return target as a critic,
V as a baseline; `losses.py`).

    trainer = make_trainer(default_config(), env, env_params)   # Trainer(init, chunk, ...)
    state, metrics = jax.jit(trainer.train)(key)
"""
from agents.a2c.losses import LossInfo, a2c_loss, return_targets
from agents.a2c.networks import ActorCritic
from agents.a2c.train import (
    A2CConfig,
    Trainer,
    TrainState,
    check_config,
    check_finite,
    complete_episodes,
    default_config,
    episode_statistics,
    evaluation_rollout,
    learning_rate,
    make_trainer,
    probe,
)

__all__ = [
    "A2CConfig", "ActorCritic", "LossInfo", "TrainState", "Trainer", "a2c_loss", "check_config",
    "check_finite", "complete_episodes", "default_config", "episode_statistics",
    "evaluation_rollout", "learning_rate", "make_trainer", "probe", "return_targets",
]
