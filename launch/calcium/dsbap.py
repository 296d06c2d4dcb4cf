"""DS-BAP on simulated spine and dendrite traces (Speiser et al. 2017, Sec. 3.4).

A dendritic spine and its parent dendrite are imaged together. Back-propagating action potentials
(bAPs, spike channel 0) raise calcium in both; the spine's own synaptic events (channel 1) only in
the spine. Each of `num_cells` spine/dendrite pairs is simulated from the DS-BAP model with its own
parameters; unsupervised DeepSpike (factorised CNN over both traces, two spike outputs, VIMCO with
per-pair DS-BAP parameters) must recover both spike trains. Scores: Pearson correlation per frame
of each inferred train with the true one (mean over pairs), the spike-count ratio, and the same for

* the network trained with the true generative parameters fixed (`true_model_run`), and
* a two-step OASIS baseline: bAPs from OASIS AR1 on the dendrite; synaptic events from OASIS AR1
  on the spine trace after subtracting the least-squares multiple of the dendrite trace.
"""
import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from calcium import evaluation, models, oasis_baseline, simulation, train  # noqa: E402
from launch import app  # noqa: E402

CHANNELS = ("bap", "event")


def simulate_pairs(config, rng: np.random.Generator):
  """Per-pair DS-BAP parameters (`calcium.simulation.random_spine_pairs`); returns the model,
  stacked raw params, spikes (N, T, 2) and traces (N, T, 2)."""
  model = models.make_model("ds_bap", frame_rate=config.frame_rate)
  raws = simulation.random_spine_pairs(
      model, rng, config.num_cells, spine_tau_range=config.spine_tau_range,
      dendrite_tau_range=config.dendrite_tau_range,
      event_amplitude_range=config.event_amplitude_range, noise_std=config.noise_std,
      spike_snr=config.spike_snr, bap_rate=config.bap_rate, event_rate=config.event_rate)
  keys = jax.vmap(jax.random.key)(config.seed * 1000 + np.arange(config.num_cells))
  spikes, traces = simulation.simulate(model, raws, keys, config.num_frames)
  return model, raws, spikes, traces


def scores(pred, spikes, prefix):
  """Correlation and count ratio per channel; pred and spikes (N, T, 2)."""
  out = {}
  for j, ch in enumerate(CHANNELS):
    out[f"{prefix}{ch}_corr"] = float(np.nanmean(
        [evaluation.pearson(p[:, j], s[:, j]) for p, s in zip(pred, spikes)]))
  return out


def oasis_two_step(traces):
  """bAPs: OASIS on the dendrite; events: OASIS on spine minus its LS fit by the dendrite."""
  out = []
  for f in traces:
    spine, dend = f[:, 0] - f[:, 0].mean(), f[:, 1] - f[:, 1].mean()
    residual = spine - np.dot(spine, dend) / np.dot(dend, dend) * dend
    out.append(np.stack([oasis_baseline.oasis_deconvolve(f[:, 1], 1),
                         oasis_baseline.oasis_deconvolve(residual, 1)], 1))
  return np.stack(out)


def experiment(config, run: app.Run) -> dict:
  rng = np.random.default_rng(config.seed)
  model, raws, spikes, traces = simulate_pairs(config, rng)
  ds = train.make_dataset(list(traces))
  tcfg = train.default_config()
  tcfg.update(config.train.to_dict())
  tcfg.update(model="ds_bap", frame_rate=config.frame_rate)
  runs = {"": None}
  if config.true_model_run:
    runs["true_model_"] = simulation.normalised_params(model, raws, traces)
  summary, preds, curves = {}, {}, {}
  for prefix, gparams in runs.items():
    cfg = tcfg.copy_and_resolve_references()
    cfg.train_generative = gparams is None
    trainer = train.make_trainer(cfg, ds, gparams)
    loop = prefix + "train" if prefix else "deepspike"
    state = run.train_loop(lambda: trainer.init(jax.random.key(config.seed)), trainer.chunk,
                           config.num_chunks, name=loop)
    infer = jax.jit(lambda p, f: trainer.recognition.probabilities(p, f))
    pred = np.stack([np.asarray(infer(state.recognition_params, f)) for f in ds.fluorescence])
    preds[prefix] = pred
    summary.update(scores(pred, spikes, prefix))
    for j, ch in enumerate(CHANNELS):
      summary[f"{prefix}{ch}_count_ratio"] = float(pred[..., j].sum() / max(spikes[..., j].sum(),
                                                                             1))
    curves[prefix or "learned model"] = np.asarray(run.history(loop)["bound_per_frame"])
    summary[f"{prefix}final_bound_per_frame"] = float(curves[prefix or "learned model"][-10:]
                                                      .mean())
    if not prefix:
      learned = jax.vmap(model.constrain)(state.generative_params)
      summary["event_amplitude_rel_error"] = float(np.median(np.abs(
          np.asarray(learned["event_amplitude"]) / np.asarray(
              jax.vmap(model.constrain)(raws)["event_amplitude"]) - 1)))
  summary.update(scores(oasis_two_step(traces), spikes, "oasis_"))
  summary["true_bap_rate_hz"] = float(spikes[..., 0].mean() * config.frame_rate)
  summary["true_event_rate_hz"] = float(spikes[..., 1].mean() * config.frame_rate)

  n = min(config.plot_frames, config.num_frames)
  t = np.arange(n) / config.frame_rate
  fig, axes = plt.subplots(4, 1, figsize=(11, 7), sharex=True)
  f = ds.fluorescence[0, :n]
  for j, label in enumerate(("spine", "dendrite")):
    axes[j].plot(t, f[:, j], lw=0.6)
    axes[j].set(ylabel=f"{label}\n(noise std)")
  for j, ch in enumerate(("bAPs", "spine events")):
    ax = axes[2 + j]
    ax.plot(t, preds[""][0, :n, j], lw=0.8, label="DeepSpike P(spike)")
    hits = spikes[0, :n, j] > 0
    ax.plot(t[hits], np.full(hits.sum(), 1.05), "k|", ms=8, label=f"true {ch}")
    ax.set(ylabel=ch, ylim=(-0.05, 1.15))
    ax.legend(loc="upper right", fontsize=7)
  axes[-1].set(xlabel="time (s)")
  axes[0].set(title="DS-BAP: separating bAPs from spine synaptic events (simulated pair 0)")
  run.save_figure("dsbap_example", fig)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
  for label, curve in curves.items():
    axes[0].plot(curve, lw=0.8, label=label)
  tails = np.concatenate([c[len(c) // 10:] for c in curves.values()])
  axes[0].set_ylim(np.percentile(tails, 1) - 0.2, tails.max() + 0.2)
  axes[0].set(xlabel="step", ylabel="VIMCO bound per frame", title="learning curves")
  axes[0].legend(fontsize=7)
  methods = [("", "DeepSpike"), ("true_model_", "net, true model"), ("oasis_", "OASIS two-step")]
  methods = [(p, lab) for p, lab in methods if f"{p}bap_corr" in summary]
  for j, ch in enumerate(CHANNELS):
    axes[1].bar(np.arange(len(methods)) + 0.4 * j, [summary[f"{p}{ch}_corr"] for p, _ in methods],
                0.4, label=ch)
  axes[1].set_xticks(np.arange(len(methods)) + 0.2, [lab for _, lab in methods], fontsize=8)
  axes[1].set(ylabel="correlation per frame", title="recovery of both spike trains")
  axes[1].legend()
  run.save_figure("dsbap_correlation", fig)
  return summary


if __name__ == "__main__":
  app.run(experiment)
