"""Shared fields of the IBP Spaceship experiments (`ibp_budget`, `ibp_tau`, `ibp_strategies`;
launcher `launch/agents/ibp.py`). Presets start from these values and change fields:

- `smoke`: tiny networks, one seed, 2 updates, the smallest setting grid (seconds; CI).
- `default`: sized for 2 shared CPU cores, each experiment under 30 minutes (agents/README.md has
  the measured wall times): 2 seeds, 1,500 updates of 32 episodes, 512 held-out scenes.
- `full`: closer to the paper's scale for a GPU: 5 seeds, 20,000 updates of 64 episodes,
  128-unit networks, budgets up to 6 (the paper's own training length is not stated in what we
  could read; this budget is ours).
"""
import ml_collections

from launch.agents.configs import sacd_base

PRESETS = ("smoke", "default", "full")


def base_config(experiment: str, preset: str) -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, PRESETS)
  c = ml_collections.ConfigDict()
  c.experiment = experiment       # One of launch.agents.ibp.EXPERIMENTS.
  c.seed = 0                      # Key of everything: fold_in(key(seed), ...).
  c.num_seeds = 2                 # Planners per setting, trained together under jax.vmap.
  # The imagination (interaction network). "joint" (default, the paper): trained together with
  # the planner, on its own supervised loss over the planner's real transitions, after a short
  # pre-fit on random-thrust transitions (warm_start_steps; [O] so that the first SVG gradients
  # go through a model that knows gravity, not a random network). "frozen": fitted first
  # (imagination_steps) and held fixed (the session-14 results; kept for comparison).
  c.imagination_training = "joint"  # One of launch.agents.ibp.IMAGINATION_TRAINING.
  c.imagination_episodes = 2048   # 3-action episodes of pre-fit (random-thrust) transitions.
  c.imagination_steps = 3000      # Frozen: Adam steps of the fit (cosine decay).
  c.warm_start_steps = 500        # Joint: Adam steps of the pre-fit (0: from the random init).
  c.model_learning_rate = 1e-3    # Joint: the model's own Adam during the planner's training.
  # The planner's training (agents.ibp.train.TrainConfig) and evaluation.
  c.learning_rate = 1e-3          # Adam, all subgraphs.
  c.batch_size = 32               # Episodes (fresh scenes) per update.
  c.updates_per_chunk = 100       # Updates per jitted chunk.
  c.num_chunks = 15               # Chunks per setting (updates = num_chunks x updates_per_chunk).
  c.eval_episodes = 512           # Held-out scenes per seed.
  # The planner's networks (agents.ibp.PlannerConfig).
  c.memory_size = 64              # LSTM units of the memory.
  c.controller_hidden = (64, 64)  # Controller MLP.
  c.manager_hidden = (64,)        # Manager MLP (and its baseline's).
  c.entropy_coef = 0.01           # The manager's entropy bonus.
  # The settings (which fields an experiment reads: see launch.agents.ibp.settings).
  c.num_actions = (3,)            # External actions per episode (budget: one curve per value).
  c.budgets = (3,)                # Imaginations per action (budget: the x axis; else [0] used).
  c.strategy = "one_step"         # Strategy of the budget and tau experiments.
  c.taus = (0.0,)                 # Imagination costs (tau experiment).
  c.strategies = ("one_step", "n_step", "tree")  # Strategies (strategies experiment).
  c.fuel_prices = (0.0002,)       # Fuel prices (strategies: one bar per price; else [0] used).
  if preset == "smoke":
    c.num_seeds = 1
    c.imagination_episodes, c.imagination_steps, c.warm_start_steps = 64, 20, 20
    c.batch_size, c.updates_per_chunk, c.num_chunks, c.eval_episodes = 4, 2, 1, 16
    c.memory_size, c.controller_hidden, c.manager_hidden = 8, (8,), (8,)
  elif preset == "full":
    c.num_seeds = 5
    c.imagination_episodes, c.imagination_steps, c.warm_start_steps = 8192, 15000, 2000
    c.batch_size, c.updates_per_chunk, c.num_chunks, c.eval_episodes = 64, 500, 40, 2048
    c.memory_size, c.controller_hidden, c.manager_hidden = 128, (128, 128), (128,)
  return c
