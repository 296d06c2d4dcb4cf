"""Config of launch.stochastic_graphs.speed_vs_pyro: the NVIL SBN step against Pyro's."""
import ml_collections

from launch.claims import Claim

REPORT = {
    "title": "stochastic_graphs vs Pyro's TraceGraph_ELBO on the NVIL sigmoid belief net",
    "headline": ("ours_step_ms", "pyro_step_ms", "speedup_over_pyro",
                 "variance_ratio_ours_over_pyro", "variance_ratio_se"),
    "demo": True,
    "claims": (
        Claim("stochastic_graphs vs Pyro", "a gradient step of the same estimator is faster "
              "than Pyro's (time ratio Pyro / ours)", "speedup_over_pyro", 1.0, ">",
              anchor_name="1x (equal speed)"),
        Claim("stochastic_graphs vs Pyro", "the same estimator: encoder-gradient variance "
              "equal to Pyro's at identical parameters (distance of the ratio from 1, in SE)",
              "variance_ratio_distance_se", 3.0, "<", anchor_name="3 SE"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the data, parameters and keys (0: the benchmark table's).
  c.steps = 100              # Gradient steps per timed repeat (both libraries).
  c.repeats = 7              # Timed repeats; the median is reported.
  c.variance_samples = 1000  # Independent gradient estimates per variance.
  c.train_steps = 2000       # Our training steps before the variance at trained parameters.
  if preset == "smoke":
    c.steps, c.repeats, c.variance_samples, c.train_steps = 5, 2, 20, 10
  elif preset == "demo":  # Seconds: the time ratio is stable at 50 steps.
    c.steps, c.repeats, c.variance_samples, c.train_steps = 50, 5, 300, 500
  elif preset not in ("default", "full"):
    raise ValueError(f"unknown preset {preset!r}; expected smoke, demo, default or full.")
  return c
