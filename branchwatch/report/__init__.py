"""``branchwatch report``: the weekly review and the quarterly ranking, from Prometheus.

:mod:`~branchwatch.report.period` bounds the period, :mod:`~branchwatch.report.query`
asks Prometheus, :mod:`~branchwatch.report.figures` computes and ranks,
:mod:`~branchwatch.report.tables` writes CSV and JSON, :mod:`~branchwatch.report.charts`
and :mod:`~branchwatch.report.html` the page, :mod:`~branchwatch.report.cli` the command.
"""
