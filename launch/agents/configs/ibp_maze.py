"""IBP experiment (4) (Pascanu et al. 2017, Sec. 4): the maze. Single fixed maze, planners
trained on 3 goals and evaluated on the held-out 4th, with 0 and 2 imaginations per move; and
the multi-maze manager (layouts with 2, 3, 4 goals) deciding when to act at imagination cost
tau. Presets: `smoke` (seconds of training, CI), `default` (2 CPU cores, under 30 minutes),
`full` (longer, more seeds; our budget, the paper's is not known to us)."""
import ml_collections

from launch.agents.configs import sacd_base
from launch.claims import Claim

REPORT = {
    "title": "IBP on the maze: held-out goal and the multi-maze manager",
    "headline": ("return_train/n0", "return_held_out/n0", "return_train/n2",
                 "return_held_out/n2", "imaginations/multi_layout0",
                 "imaginations/multi_layout2"),
    "claims": (
        Claim("Pascanu et al. 2017 (IBP, Sec. 4, as issue 18 restates it)",
              "imagination (2 per move) helps on the held-out goal: return above the "
              "controller alone's", "return_held_out/n2", "return_held_out/n0", ">",
              anchor_name="0 imaginations"),
        Claim("Pascanu et al. 2017 (IBP, Sec. 4; direction our reading)",
              "the multi-maze manager imagines more in the 4-goal layout than in the 2-goal one",
              "imaginations/multi_layout2", "imaginations/multi_layout0", ">",
              anchor_name="2-goal layout"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  sacd_base.check_preset(preset, ("smoke", "default", "full"))
  c = ml_collections.ConfigDict()
  c.seed = 0                  # Key of everything.
  c.num_seeds = 2             # Planners per setting (vmapped).
  c.cells = 3                 # Maze cells per side (7x7 grid).
  c.budgets = (0, 2)          # Single maze: imaginations per move (fixed budget).
  c.multi_budget = 2          # Multi-maze: at most this many imaginations per move.
  c.tau = 0.02                # Multi-maze: imagination cost per imagination.
  c.learning_rate = 1e-3      # Adam.
  c.batch_size = 32           # Episodes per update.
  c.updates_per_chunk = 100   # Updates per jitted chunk.
  c.num_chunks = 20           # Chunks per setting.
  c.eval_episodes = 512       # Evaluation episodes per seed and goal set / layout.
  c.memory_size = 64          # LSTM units.
  c.hidden = (64,)            # MLPs of controller, manager, baselines.
  c.entropy_coef = 0.01       # Entropy bonus of manager and controller.
  if preset == "smoke":
    c.num_seeds, c.budgets, c.multi_budget = 1, (0, 1), 1
    c.batch_size, c.updates_per_chunk, c.num_chunks, c.eval_episodes = 4, 2, 1, 8
    c.memory_size, c.hidden = 8, (8,)
  elif preset == "full":
    c.num_seeds, c.num_chunks, c.batch_size, c.eval_episodes = 5, 200, 64, 2048
    c.memory_size, c.hidden = 128, (128,)
  return c
