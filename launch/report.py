"""results/REPORT.md: one table of headline numbers, then each experiment's numbers and figures."""
from __future__ import annotations

import datetime
import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import jax

from launch import claims as claims_lib

SMOKE_NOTE = ("**Smoke preset: these numbers check that the code paths run; they are not results "
              "(`make demo` shows the papers' claims).**")


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  if isinstance(value, list) and len(value) > 6:
    return f"[{len(value)} values]"
  return str(value)


def _cell(text: str) -> str:
  """Text safe inside a Markdown table cell (a bare `|` would end the cell)."""
  return str(text).replace("|", "\\|")


def _value(x: float | None) -> str:
  return "-" if x is None else f"{x:.4g}"


def claim_verdicts(entries: Sequence[dict[str, Any]]) -> list[tuple[str, claims_lib.Verdict]]:
  """(experiment name, verdict) for every claim of every entry; a failed run's are MISSING."""
  return [(e["name"], claims_lib.evaluate(c, e.get("summary", {})))
          for e in entries for c in e.get("claims", ())]


def write_report(out: pathlib.Path, preset: str, entries: Sequence[dict[str, Any]]) -> pathlib.Path:
  """Writes OUT/REPORT.md from `launch.reproduce` entries; figure links are relative to OUT."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
  total = sum(e.get("seconds", 0.0) for e in entries if math.isfinite(e.get("seconds", 0.0)))
  reused = sum(bool(e.get("reused")) for e in entries)
  lines = ["# Reproduction report", ""]
  if preset == "smoke":
    lines += [SMOKE_NOTE, ""]
  lines += [
      f"Preset `{preset}`, generated {now} on {jax.device_count()}x {jax.devices()[0].platform} "
      f"({os.cpu_count()} CPU cores), total {total:.0f} s"
      + (f" ({reused} of {len(entries)} runs finished in an earlier call and reused; their "
         "times are those of that call)" if reused else "") + ". "
      f"Command: `python -m launch.reproduce --preset={preset}`.", "",
  ]
  verdicts = claim_verdicts(entries)
  if verdicts:
    held = sum(v.status == claims_lib.HOLDS for _, v in verdicts)
    lines += [f"{held} of {len(verdicts)} claims hold at this preset.", "",
              "| paper | claim | anchor | ours | holds at this preset |", "|---|---|---|---|---|"]
    for name, v in verdicts:
      c = v.claim
      if isinstance(c.anchor, str):  # measured: name it and give its value
        anchor = f"{c.anchor_name or c.anchor}: {_value(v.anchor)}"
      else:                          # a fixed threshold
        anchor = f"{c.anchor_name} = {_value(v.anchor)}" if c.anchor_name else (
            f"fixed {_value(v.anchor)}")
      lines.append(f"| {_cell(c.paper)} | {_cell(c.claim)} (`{name}`) | {_cell(anchor)} "
                   f"| {c.ours}: {_value(v.ours)} | {v.status} |")
    lines.append("")
  lines += ["| experiment | status | time (s) | headline numbers |", "|---|---|---|---|"]
  for e in entries:
    summary = e.get("summary", {})
    numbers = "; ".join(f"{k} = {_format(summary[k])}" for k in e["headline"] if k in summary)
    status = f"{e['status']} (reused)" if e.get("reused") else e["status"]
    lines.append(f"| {_cell(e['title'])} (`{e['name']}`) | {status} | {e.get('seconds', 0):.1f} "
                 f"| {numbers or '-'} |")
  for e in entries:
    lines += ["", f"## {e['title']}", "", f"`{e['name']}`, workdir "
              f"`{os.path.relpath(e['workdir'], out)}`.", ""]
    if e["status"] != "ok":
      lines += ["```", e.get("error", "").strip()[-3000:], "```"]
      continue
    summary = e["summary"]
    lines += ["| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {_format(v)} |" for k, v in summary.items()]
    figures = sorted((pathlib.Path(e["workdir"]) / "figures").glob("*.png"))
    for fig in figures:
      lines += ["", f"![{fig.stem}]({os.path.relpath(fig, out)})"]
  path = out / "REPORT.md"
  path.write_text("\n".join(lines) + "\n")
  return path
