"""IBP experiment `tau` on Spaceship: see `launch/agents/ibp.py` (the launcher) and
`launch/agents/configs/ibp_tau.py` (the config and the paper's claims).

  python -m launch.agents.ibp_tau \
    --config=launch/agents/configs/ibp_tau.py:smoke --workdir=/tmp/ibp
"""
from launch import app
from launch.agents.ibp import experiment

__all__ = ["experiment"]

if __name__ == "__main__":
  app.run(experiment)
