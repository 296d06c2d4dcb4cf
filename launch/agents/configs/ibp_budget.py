"""IBP experiment (1) (Pascanu et al. 2017, Sec. 3.1): Spaceship task loss against the
maximum number of imaginations per action (0 = the SVG controller alone, the paper's baseline),
for 1, 2 and 3 external actions. [O] The 1-step strategy at a fixed budget (every imagination
from the current real state, exactly n per action), so the curve measures what imagining adds,
without the manager's learning noise; fuel price 0.0002. Fields: `ibp_base.py`."""
import ml_collections

from launch.agents.configs import ibp_base
from launch.claims import Claim

REPORT = {
    "title": "IBP on Spaceship: task loss vs imaginations per action, 1-3 external actions",
    "headline": tuple(f"task_loss/K{k}_n{n}" for k in (1, 2, 3) for n in (0, 3)),
    "claims": tuple(
        Claim("Pascanu et al. 2017 (IBP, Sec. 3.1)",
              f"with {k} external action{'s' if k > 1 else ''}, imagining (3 per action) lowers "
              "the task loss below the SVG controller alone", f"task_loss/K{k}_n3",
              f"task_loss/K{k}_n0", "<", anchor_name="0 imaginations")
        for k in (1, 2, 3)),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ibp_base.base_config("budget", preset)
  c.num_actions = (1, 2, 3)
  c.budgets = (0, 1, 2, 3)
  c.strategy = "one_step"
  if preset == "smoke":
    c.num_actions, c.budgets = (1,), (0, 1)
  elif preset == "full":
    c.budgets = (0, 1, 2, 3, 4, 6)
  return c
