"""`sla eval`: strategies against greedy through the running server (docs/background.md#the-papers-evaluation)."""
