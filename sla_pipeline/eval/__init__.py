"""`sla eval`: strategies against greedy through the running server (REFERENCE §4)."""
