"""Bernoulli toy of Tucker et al. 2017: minimise E[(b - t)^2], b ~ Bernoulli(sigmoid(theta))."""
import ml_collections

from launch.claims import Claim

REPORT = {
    "title": "Bernoulli toy E[(b - t)^2]: gradient variance and convergence per estimator",
    "headline": ("var_t0.45/reinforce", "var_t0.45/disarm", "var_t0.499/reinforce",
                 "var_t0.499/disarm", "var_t0.499/relax", "correct_side_t0.499",
                 "final_theta_t0.499/relax", "final_p_t0.499/disarm"),
    "demo": True,
    "claims": (
        Claim("Grathwohl et al. 2018 (RELAX)", "RELAX's gradient variance at p = 1/2 below "
              "REINFORCE's (t = 0.499)", "var_t0.499/relax", "var_t0.499/reinforce",
              "<", anchor_name="REINFORCE"),
        Claim("Grathwohl et al. 2018 (RELAX)", "RELAX ends on the right side (p < 1/2) at "
              "t = 0.499", "final_p_t0.499/relax", 0.5, "<", anchor_name="p = 1/2"),
        Claim("Dong et al. 2020 (DisARM)", "DisARM's variance below REINFORCE's at t = 0.499",
              "var_t0.499/disarm", "var_t0.499/reinforce", "<", anchor_name="REINFORCE"),
        Claim("Dong et al. 2020 (DisARM)", "DisARM ends on the right side at t = 0.499",
              "final_p_t0.499/disarm", 0.5, "<", anchor_name="p = 1/2"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0                    # PRNG seed of training and of the variance measurement.
  c.targets = (0.45, 0.499)     # Values of t; the optimum is p = 0 since t < 0.5.
  c.estimators = ("reinforce", "reinforce_ma", "loo", "gumbel_st", "rebar", "relax", "arm",
                  "disarm")     # Estimators compared (see launch/stochastic_graphs/bernoulli.py).
  c.learning_rate = 0.01        # Adam step size on theta.
  c.control_learning_rate = 0.01  # Adam step size on REBAR's (eta, temperature) and RELAX's
  #                               (temperature, r_rho): the estimator-variance objective.
  c.control_hidden = 10         # tanh units of RELAX's control network r_rho.
  c.temperature = 0.5           # Gumbel-ST temperature; initial REBAR / RELAX temperature.
  c.ma_decay = 0.9              # Moving-average baseline decay.
  c.variance_samples = 10000    # Per-sample gradients used to measure variance at theta = 0.
  c.variance_adapt_steps = 1000  # Control-parameter steps at theta = 0 before measuring there.
  c.variance_window = 100       # Steps per window of the in-training gradient variance.
  c.steps_per_chunk = 500       # Optimisation steps per jitted, checkpointed chunk.
  c.num_chunks = 6              # Chunks; total steps = steps_per_chunk * num_chunks.
  if preset == "smoke":  # Compilation dominates: four estimators covering every code path.
    c.estimators = ("reinforce", "loo", "relax", "disarm")
    c.variance_samples = 500
    c.variance_adapt_steps = 200
    c.variance_window = 10
    c.steps_per_chunk = 20
    c.num_chunks = 2
  elif preset == "demo":  # The estimators of the claims, at the default's 3000 steps.
    c.estimators = ("reinforce", "rebar", "relax", "disarm")
    c.targets = (0.499,)
  elif preset == "full":
    c.variance_samples = 100000
    c.steps_per_chunk = 2000
    c.num_chunks = 10
  elif preset != "default":
    raise ValueError(f"unknown preset {preset!r}; expected smoke, demo, default or full.")
  return c
