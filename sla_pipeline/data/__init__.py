"""Preference data for the reward head: packaged sources, the train / held-out split, sampling, judging, pairs."""
