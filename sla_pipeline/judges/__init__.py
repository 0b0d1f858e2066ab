"""Judges of answer quality for general chat (methods.py, checklist.py, classifier.py) and their validation
against pairs whose better side is known (check.py: `sla judge-check`)."""
