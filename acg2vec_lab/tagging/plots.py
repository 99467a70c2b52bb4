"""Figures of the tagging notebook: micro PR curve with operating points, per-tag F1 thresholds."""
from __future__ import annotations

from typing import Any

import numpy as np

from acg2vec_lab.tagging.metrics import micro_pr_curve


def pr_curve_figure(y_true: np.ndarray, probs: np.ndarray, points: dict[str, tuple[float, float]] | None = None,
                    title: str = "micro precision-recall") -> Any:
    """Micro PR curve of ``probs`` with named ``(recall, precision)`` operating points; returns the figure."""
    import matplotlib.pyplot as plt

    c = micro_pr_curve(y_true, probs)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(c["recall"], c["precision"], lw=1.5, label="micro PR")
    base = float(np.asarray(y_true).mean())
    ax.axhline(base, color="grey", ls="--", lw=1, label=f"chance (prevalence {base:.3f})")
    for name, (r, p) in (points or {}).items():
        ax.scatter([r], [p], zorder=3, label=f"{name}: P {p:.2f} R {r:.2f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
