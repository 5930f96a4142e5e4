"""Seeing inside the networks: filters, feature maps, class activation maps, deconvnet
projections, training curves, confusion matrices, architecture diagrams and the HTML report.

Each `plot_*` function draws one figure into a folder and returns its path together with the
data drawn (so tests check the picture's content); `write_report(run_dir)` is what the trainer
calls at the end of every run.
"""


def write_report(run_dir, data_dir=None):
    """Render run `run_dir`'s figures and write its self-contained report.html; returns its path."""
    from cnnlab.viz.report import write_report as write

    return write(run_dir, data_dir)
