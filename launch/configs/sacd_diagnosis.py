"""Design diagnosis with SAC-D: LunarLanderContinuous with a mis-scaled fuel cost."""
import ml_collections

REPORT = {
    "title": "SAC-D diagnosis: LunarLander with fuel cost x10 vs fixed weights",
    "headline": ("fuel_influence/misscaled", "fuel_influence/fixed", "fuel_value/misscaled",
                 "fuel_value/fixed", "task_return/misscaled", "task_return/fixed"),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                     # First seed; run s uses seed + s.
  c.env = "LunarLanderContinuous-v2"  # envpool task id.
  c.fuel_components = ("main_engine", "side_engine")  # Components whose weight is wrong.
  c.misscale = 10.0              # The designer's mistake: fuel cost multiplied by this.
  c.num_seeds = 2                # SAC-D runs per variant.
  c.num_envs = 1                 # Parallel environments per run.
  c.env_steps = 60_060           # Batched env steps per run (x num_envs transitions);
                                 # CPU-sized, not the paper's budget (see full).
  c.steps_per_chunk = 2_002      # Env steps per checkpointed chunk (a multiple of log_every);
                                 # environments restart at its boundaries. 2 x 1001: two
                                 # 1000-step episodes plus envpool's reset steps fit.
  c.learning_starts = 5_000      # Env steps of uniform random actions before updates.
  c.updates_per_step = 1         # Gradient updates per env step.
  c.batch_size = 256             # Replay batch per update.
  c.buffer_size = 60_060         # Replay capacity (holds the whole default run).
  c.hidden_sizes = (64, 64)      # MLP widths (CPU-sized; full: 256, 256).
  c.learning_rate = 3e-4         # Adam step size of the policy.
  c.critic_learning_rate = 1e-3  # Adam step size of the critics (CleanRL's q_lr; see
                                 # sacd_compare.py and agents/README.md, "HalfCheetah").
  c.alpha_learning_rate = 1e-3   # Adam step size of log(alpha) (CleanRL; alpha starts at 1.0).
  c.discount = 0.99              # gamma.
  c.tau = 0.005                  # Polyak rate.
  c.influence_states = 64        # Replay states on which influence is measured.
  c.log_every = 286              # Env steps between logged metrics.
  if preset == "smoke":
    c.steps_per_chunk = 150
    c.num_seeds = 1
    c.num_envs = 2
    c.env_steps = 150
    c.learning_starts = 50
    c.batch_size = 32
    c.buffer_size = 2_000
    c.hidden_sizes = (32, 32)
    c.critic_learning_rate = 3e-4  # One rate, as tests/launch/sacd_host_runs_test: one trainer.
    c.alpha_learning_rate = 3e-4
    c.influence_states = 16
    c.log_every = 25
    c.discount = 0.9             # As the other sacd smoke presets: one compiled trainer for all.
  elif preset == "full":
    c.num_seeds = 3
    c.env_steps = 300_300
    c.steps_per_chunk = 10_010
    c.buffer_size = 1_000_000
    c.hidden_sizes = (256, 256)
    c.log_every = 1_001
  elif preset == "restore":      # CPU budget at which the fixed agent can learn the task
    c.num_envs = 4               # (agents/README.md, "Design diagnosis"): 4 envs per update,
                                 # 4 x 200,200 = 800,800 transitions and 195,200 updates a run.
    c.env_steps = 200_200        # Batched env steps per run (20 chunks).
    c.steps_per_chunk = 10_010   # Fewer restarts: 4 abandoned episodes per 40,040 transitions.
    c.buffer_size = 1_000_000    # Holds the whole run (800,800 transitions).
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; expected smoke, default, restore or full.")
  return c
