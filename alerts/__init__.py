"""Prometheus rules as code: thresholds in alerts.config, rule files built by alerts.build.

See docs/alerting.md (deploying and changing them) and docs/runbook.md (one section per alert).
"""
