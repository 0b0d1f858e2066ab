"""The training report as a picture: loss per step (and held-out per epoch), pair accuracy per epoch, and
the final head's accuracy against the share of each response seen (the curve whose area is AuTRC)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot(report: dict, path: Path) -> None:
    steps, epochs = report["history"]["steps"], report["history"]["epochs"]
    per_epoch = max(1, len(steps) // max(1, len(epochs) - 1))
    fig, (ax_loss, ax_acc, ax_curve) = plt.subplots(1, 3, figsize=(15, 4.2))
    ax_loss.plot([s["step"] for s in steps], [s["loss"] for s in steps], lw=0.8, label="train (per step)")
    ax_loss.plot([e["epoch"] * per_epoch for e in epochs], [e["heldout_loss"] for e in epochs], "o-",
                 label="held-out (per epoch)")
    ax_loss.set(xlabel="step", ylabel="loss", title=f"loss ({report['config']['loss']})")
    ax_loss.legend()
    ax_acc.plot([e["epoch"] for e in epochs], [e["pair_accuracy"] for e in epochs], "o-", label="pair accuracy")
    ax_acc.plot([e["epoch"] for e in epochs], [e["autrc"] for e in epochs], "s--", label="AuTRC")
    ax_acc.axhline(0.5, color="grey", lw=0.5)
    ax_acc.set(xlabel="epoch", ylim=(0.3, 1.0), title="held-out pairs")
    ax_acc.legend()
    final = report["final"]["curve"]
    xs = [0.0] + [float(f) for f in final]
    ax_curve.plot(xs, [0.5] + list(final.values()), "o-")
    ax_curve.axhline(0.5, color="grey", lw=0.5)
    ax_curve.set(xlabel="share of each response seen", ylabel="accuracy", ylim=(0.3, 1.0),
                 title=f"token-level reward curve (AuTRC {report['final']['autrc']:.3f})")
    fig.suptitle(f"reward head for {report['base_model']}: {report['pairs']['train']} training pairs, "
                 f"{report['pairs']['heldout']} held-out ({report['config']['head']} head)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
