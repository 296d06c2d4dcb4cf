"""IBP experiment (2) (Pascanu et al. 2017, Sec. 3.1): imaginations per action and task loss
against the imagination cost tau, the learned manager deciding when to act (tree strategy, at
most 3 imaginations per action, 3 external actions). The paper: raising tau smoothly drives
imagination towards 0 and raises the task loss. Fields: `ibp_base.py`."""
import ml_collections

from launch.agents.configs import ibp_base
from launch.claims import Claim

TAUS = (0.0, 0.003, 0.01, 0.03, 0.1)

REPORT = {
    "title": "IBP on Spaceship: imagination use and task loss vs the imagination cost tau",
    "headline": tuple(f"{m}/tau{i}" for i in range(len(TAUS))
                      for m in ("imaginations", "task_loss")),
    "claims": (
        Claim("Pascanu et al. 2017 (IBP, Sec. 3.1)",
              f"the largest tau ({TAUS[-1]}) drives imagination below that at tau = 0",
              f"imaginations/tau{len(TAUS) - 1}", "imaginations/tau0", "<",
              anchor_name="tau = 0"),
        Claim("Pascanu et al. 2017 (IBP, Sec. 3.1)",
              f"with the largest tau ({TAUS[-1]}) the task loss is higher than at tau = 0",
              f"task_loss/tau{len(TAUS) - 1}", "task_loss/tau0", ">", anchor_name="tau = 0"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ibp_base.base_config("tau", preset)
  c.num_actions = (3,)
  c.budgets = (3,)
  c.strategy = "tree"
  c.taus = TAUS
  if preset == "smoke":
    c.num_actions, c.budgets, c.taus = (1,), (2,), (0.0, 0.1)
  elif preset == "full":
    c.budgets = (6,)
  return c
