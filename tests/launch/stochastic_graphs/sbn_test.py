"""Smoke test of launch.stochastic_graphs.sbn; finite gradients of the estimators it skips."""
import math

import jax
import jax.numpy as jnp
import numpy as np

from launch import app
from launch.stochastic_graphs import sbn as sg_sbn
from launch.stochastic_graphs.configs import sbn as config_module


def test_sg_sbn_smoke(tmp_path):
  config = config_module.get_config("smoke")
  summary = app.execute(sg_sbn.experiment, config, tmp_path, progress=False)
  for layers in config.layers:
    for est in config.estimators:
      elbo = summary[f"final_train_elbo/{layers}/{est}"]
      # 64 binary pixels: -ELBO is between 0 and the cost of a uniform guess plus the KL.
      assert -64 * math.log(2) - 20 < elbo < 0, (layers, est, elbo)
      assert math.isfinite(summary[f"mean_log10_var/{layers}/{est}"])
      assert math.isfinite(summary[f"test_elbo/{layers}/{est}"])
  assert (tmp_path / "figures" / "sbn_elbo_variance.png").exists()


def test_other_estimators_give_finite_gradients():
  config = config_module.get_config("smoke")
  train, _ = sg_sbn.load_data(config)
  batch = jnp.asarray(train[:8])
  params = sg_sbn.init_params(jax.random.PRNGKey(0), 2, 4, 64, jnp.asarray(train.mean(0)))
  ma = {"h1": jnp.zeros(()), "h2": jnp.zeros(())}
  for est in ("reinforce_ma", "nvil", "loo", "vimco", "gumbel_st", "rebar"):
    loss = sg_sbn.make_loss(config, 2, est)
    # Eager: one evaluation each, so op-by-op dispatch beats compiling six programs.
    g, (cost, _) = jax.grad(lambda p: loss(p, batch, jax.random.PRNGKey(1), ma),
                            has_aux=True)(params)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(g)), est
    assert np.linalg.norm(np.asarray(g["enc2"]["w"])) > 0, est
    assert 0 < float(cost) < 200, est
