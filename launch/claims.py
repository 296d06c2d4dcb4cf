"""A paper's headline claim as data, checked against an experiment's summary.

A config module's `REPORT` may list `claims`: each says which summary number is ours, what it is
compared with (another summary number, usually the anchor's measured in the same run, or the
paper's printed value), and how. `launch.report` puts every claim in the opening table of
`results/REPORT.md` with the verdict computed here, so the table cannot claim what the numbers do
not show.

    Claim(paper="Speiser et al. 2017", claim="DeepSpike above OASIS AR2 on held-out recordings",
          ours="simulated_corr", anchor="oasis_ar2_corr", relation=">")
    Claim(paper="Park et al. 2015", claim="the swiss roll is unrolled",
          ours="spearman", anchor=0.9, relation=">")            # a fixed threshold

The claim is `ours > anchor + margin` (or `>=`); for `<` and `<=` it is `ours < anchor - margin`:
the margin is how far ours must clear the anchor in the claimed direction.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from typing import Any, NamedTuple

RELATIONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
HOLDS, DOES_NOT_HOLD, MISSING = "holds", "does not hold", "not measured"


class Claim(NamedTuple):
  """One headline claim: `summary[ours] relation (anchor + margin)`."""
  paper: str                 # Who claims it, e.g. "Speiser et al. 2017".
  claim: str                 # The claim in words, as the report prints it.
  ours: str                  # Summary key of our number.
  anchor: str | float        # Summary key of the anchor's number, or a fixed value.
  relation: str = ">"        # One of RELATIONS.
  margin: float = 0.0        # How far ours must clear the anchor (>= 0).
  anchor_name: str = ""      # How the report names the anchor (default: its key or value).


class Verdict(NamedTuple):
  claim: Claim
  ours: float | None
  anchor: float | None
  status: str                # HOLDS, DOES_NOT_HOLD or MISSING.


def check_claim(claim: Claim) -> Claim:
  """Refuses a malformed claim by name (unknown relation, negative margin, empty keys)."""
  if claim.relation not in RELATIONS:
    raise ValueError(f"claim {claim.claim!r}: relation {claim.relation!r} is not one of "
                     f"{sorted(RELATIONS)}.")
  if not claim.ours:
    raise ValueError(f"claim {claim.claim!r}: `ours` must name a summary key.")
  if not isinstance(claim.anchor, (str, int, float)) or claim.anchor == "":
    raise ValueError(f"claim {claim.claim!r}: `anchor` must be a summary key or a number; "
                     f"got {claim.anchor!r}.")
  if not claim.margin >= 0:
    raise ValueError(f"claim {claim.claim!r}: margin must be >= 0; got {claim.margin!r}.")
  return claim


def _number(summary: Mapping[str, Any], key: str | float) -> float | None:
  if not isinstance(key, str):
    return float(key)
  value = summary.get(key)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return float(value) if math.isfinite(value) else None


def evaluate(claim: Claim, summary: Mapping[str, Any]) -> Verdict:
  """The verdict on `claim` from `summary`; MISSING when a number is absent or not finite."""
  check_claim(claim)
  ours, anchor = _number(summary, claim.ours), _number(summary, claim.anchor)
  if ours is None or anchor is None:
    return Verdict(claim, ours, anchor, MISSING)
  bound = anchor - claim.margin if claim.relation in ("<", "<=") else anchor + claim.margin
  holds = RELATIONS[claim.relation](ours, bound)
  return Verdict(claim, ours, anchor, HOLDS if holds else DOES_NOT_HOLD)
