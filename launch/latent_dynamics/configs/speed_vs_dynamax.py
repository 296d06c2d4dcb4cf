"""Config of launch.latent_dynamics.speed_vs_dynamax: the exact LDS posterior against dynamax."""
import ml_collections

from launch.claims import Claim

DEMO_T = 10_000

REPORT = {
    "title": "latent_dynamics vs dynamax: exact LDS smoothing posterior (latent 10, 50 "
             "observations)",
    "headline": (f"ours_s/T{DEMO_T}", f"dynamax_s/T{DEMO_T}", f"speedup_over_dynamax/T{DEMO_T}",
                 f"mean_rel_diff/T{DEMO_T}"),
    "demo": True,
    "claims": (
        Claim("latent_dynamics vs dynamax", f"the exact posterior (T = {DEMO_T:,}) is faster "
              "than dynamax's RTS smoother (time ratio dynamax / ours)",
              f"speedup_over_dynamax/T{DEMO_T}", 1.0, ">", anchor_name="1x (equal speed)"),
        Claim("latent_dynamics vs dynamax", "the same posterior means (largest difference "
              "relative to their scale)", f"mean_rel_diff/T{DEMO_T}", 1e-3, "<",
              anchor_name="1e-3"),
    ),
}


def get_config(preset: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seed of the data, parameters and keys (0: the benchmark table's).
  c.lengths = (1_000, 10_000, 100_000)  # Sequence lengths T.
  c.reps = 5                   # Timed runs after a warm-up; the median is reported.
  c.dynamax_parallel = True    # Also time dynamax's parallel smoother (a child process on CPU).
  c.parallel_timeout_s = 300.0  # Seconds allowed to that child (it can deadlock on jaxlib 0.10).
  if preset == "smoke":
    c.lengths, c.reps, c.dynamax_parallel = (200,), 1, False
  elif preset == "demo":  # The claim's length only, sequential smoothers (about a minute).
    c.lengths, c.reps, c.dynamax_parallel = (DEMO_T,), 3, False
  elif preset not in ("default", "full"):
    raise ValueError(f"unknown preset {preset!r}; expected smoke, demo, default or full.")
  return c
