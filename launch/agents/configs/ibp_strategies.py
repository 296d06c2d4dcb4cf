"""IBP experiment (3) (Pascanu et al. 2017, Sec. 3.1): 1-step vs n-step vs imagination tree at a
fixed budget (3 imaginations per action, 3 external actions), for both fuel prices (0.0002,
0.0004). The paper: the tree does best, more so with a larger budget. [O] The tree's manager
chooses root vs latest at every step (act masked until the budget is used), so the three
strategies imagine equally often. Fields: `ibp_base.py`."""
import ml_collections

from launch.agents.configs import ibp_base
from launch.claims import Claim

PRICES = (0.0002, 0.0004)

REPORT = {
    "title": "IBP on Spaceship: 1-step vs n-step vs imagination tree, both fuel prices",
    "headline": tuple(f"task_loss/{s}_p{i}" for i in range(len(PRICES))
                      for s in ("one_step", "n_step", "tree")),
    "claims": tuple(
        Claim("Pascanu et al. 2017 (IBP, Sec. 3.1)",
              f"at fuel price {price}, the imagination tree's task loss is below the {other}'s",
              f"task_loss/tree_p{i}", f"task_loss/{other}_p{i}", "<", anchor_name=other)
        for i, price in enumerate(PRICES) for other in ("one_step", "n_step")),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ibp_base.base_config("strategies", preset)
  c.num_actions = (3,)
  c.budgets = (3,)
  c.fuel_prices = PRICES
  if preset == "smoke":
    c.num_actions, c.budgets, c.fuel_prices = (1,), (2,), (0.0002,)
  elif preset == "full":
    c.budgets = (6,)
  return c
