"""Seeing inside the networks: filters, feature maps, class activation maps, deconvnet
projections, training curves, confusion matrices, architecture diagrams and the HTML report.

Each `plot_*` function draws one figure into a folder and returns its path together with the
data drawn (so tests check the picture's content); `write_report(run_dir)` writes a run's
report (`cnnlab train` calls it after training, `cnnlab report` on demand).
"""


def write_report(run_dir, data_dir=None, force=False):
    """Write run `run_dir`'s self-contained report.html; returns its path."""
    from cnnlab.viz.report import write_report as write

    return write(run_dir, data_dir, force)
