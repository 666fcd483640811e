"""The console table of a test evaluation (`format_table`), printed at the end of a run and by
`vaelab-evaluate`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["format_table"]


def exact_rows(m: dict[str, Any], row: Callable) -> list[str]:
    """The console line of the quadrature, if it ran."""
    if "test/nll_exact" not in m:
        return []
    gap = m["test/nll"] - m["test/nll_exact"]
    return [
        row(
            "-log p(x) exact (quadrature)",
            m["test/nll_exact"],
            f"± {m['test/nll_exact_error']:.1e}; IS - exact = {gap:.3f}; {m['eval'].get('exact_seconds', 0):.1f}s",
        )
    ]


def estimated(m: dict[str, Any]) -> str:
    """The note on the NLL of a prior whose log p(z) is estimated (lars): not a guaranteed bound."""
    if m.get("prior/exact_log_prob", True):
        return ""
    return f"; log p(z) estimated, not a bound: {m.get('prior/log_prob_estimator', '')}"


def quality_rows(m: dict[str, Any], row) -> list[str]:
    """The console lines of the sample quality, if it was measured ."""
    if "test/fid" not in m:
        skipped = m["eval"].get("quality_skipped")
        return [f"  {'sample quality':<32}{'skipped':>10}  {skipped}"] if skipped else []
    run = m["eval"]
    return [
        row(
            "samples: FID (classifier feats)",
            m["test/fid"],
            f"precision {m['test/precision']:.3f}, recall "
            f"{m['test/recall']:.3f} (k={run['quality']['k']}; {run['quality_num_samples']} samples vs "
            f"{run['quality_num_reference']} real; classifier accuracy {m['test/classifier_accuracy']:.3f})",
        ),
        row(
            "  Spearman(log q(z), -distance)",
            m["test/quality_density_spearman"],
            "> 0: holes give worse samples; "
            f"confidence {m['test/confidence_density_spearman']:.3f}; {run['quality_seconds']:.1f}s",
        ),
    ]


def decomposition_rows(m: dict[str, Any], row, num, log_n: float) -> list[str]:
    """KL = I(x;z) + KL(q(z)||p(z)); for a hierarchical model that of the top level z2, whose
    KL is the whole KL less the lower level's, E KL(q(z1|x,z2)||p(z1|z2)). Then the marginal KL's
    total correlation, and for a factorised prior its split TC + dimension-wise KL."""
    rest = f"= {num(m['test/mutual_info'])} + {num(m['test/marginal_kl'])}   (I <= log N = {log_n:.3f})"
    if "test/kl_bottom" not in m:
        lines = [row("KL = I(x;z) + KL(q(z)||p(z))", m["test/kl"], rest)]
    else:
        top = m["test/kl"] - m["test/kl_bottom"]
        lines = [
            row("KL = KL(z2) + E KL(z1|z2)", m["test/kl"], f"= {num(top)} + {num(m['test/kl_bottom'])}"),
            row("KL(z2) = I(x;z2) + KL(q||p)(z2)", top, rest),
        ]
    if "test/total_correlation" not in m:  # evaluated before vaelab reported it
        return lines
    tc = m["test/total_correlation"]
    if "test/dimwise_kl" in m:
        split = f"= {num(tc)} + {num(m['test/dimwise_kl'])} (on q(z)'s samples: {tc + m['test/dimwise_kl']:.3f})"
        return [*lines, row("KL(q||p) = TC + sum KL(q_j||p_j)", m["test/marginal_kl"], split)]
    return [*lines, row("TC = KL(q(z)||prod_j q(z_j))", tc)]


def format_table(metrics: dict[str, Any]) -> str:
    """A short console summary of `evaluate_model`'s output."""
    m, run, stats = metrics, metrics["eval"], metrics["latent_stats"]
    num = lambda value: f"{value:.3f}" if value >= 0 else f"({value:.3f})"

    def row(label: str, value: float, rest: str = "") -> str:
        return f"  {label:<32}{value:10.3f}  {rest}"

    lines = [
        f"vaelab eval: {run['num_inputs']} test inputs, S={run['num_samples']} importance samples "
        f"(chunks of {run['chunk_size']}), seed {run['seed']}, {run['seconds']:.1f}s",
        row("-log p(x) [nats]", m["test/nll"], f"{m['test/bpd']:.4f} bits/dim{estimated(m)}"),
        *exact_rows(m, row),
        row("ELBO = REC - KL", m["test/elbo"], f"= {num(m['test/rec'])} - {num(m['test/kl'])}"),
        row(
            "KL = CE[q(z)||p(z)] - H[q(z|x)]",
            m["test/kl"],
            f"= {num(m['test/cross_entropy'])} - {num(m['test/entropy'])}",
        ),
        *decomposition_rows(m, row, num, math.log(run["num_inputs"])),
        row(
            "holes: KL(p(z)||q(z))",
            m["test/reverse_kl"],
            f"{100 * m['test/hole_fraction_heldout']:.1f}% of prior "
            f"samples in holes (1% if p = q), rank {m['test/hole_rank']:.3f} (0.5 if p = q)",
        ),
        f"  {'active units':<32}{m['test/active_units']:10d}  of {len(stats['activity'])}",
        *quality_rows(m, row),
        "  dim    q mean     q var  prior mean  prior var  activity",
    ]
    columns = zip(stats["q_mean"], stats["q_var"], stats["prior_mean"], stats["prior_var"], stats["activity"])
    for dim, (q_mean, q_var, prior_mean, prior_var, activity) in enumerate(columns):
        if dim == 8:
            lines.append(f"  ... ({len(stats['activity']) - 8} more dimensions in metrics.json)")
            break
        lines.append(f"  {dim:3d} {q_mean:9.3f} {q_var:9.3f} {prior_mean:11.3f} {prior_var:10.3f} {activity:9.3f}")
    return "\n".join(lines)
