"""IBP experiment `budget` on Spaceship: see `launch/agents/ibp.py` (the launcher) and
`launch/agents/configs/ibp_budget.py` (the config and the paper's claims).

  python -m launch.agents.ibp_budget \
    --config=launch/agents/configs/ibp_budget.py:smoke --workdir=/tmp/ibp
"""
from launch import app
from launch.agents.ibp import experiment

__all__ = ["experiment"]

if __name__ == "__main__":
  app.run(experiment)
