"""The supervised minibatch trainer of `agents/` (I2A's environment model, IBP's interaction
network, CF-GPS's scenario model): `latent_dynamics.supervised`, re-exported.

It lives in `latent_dynamics` because the state-space environment models there train with it too
and `latent_dynamics` may not import `agents` (WORKSPACE.md, dependencies between packages).
"""
from latent_dynamics.supervised import (  # noqa: F401
    LOOPS,
    SCHEDULES,
    TrainConfig,
    Trainer,
    TrainState,
    check_config,
    make_optimizer,
    make_schedule,
    make_trainer,
)
