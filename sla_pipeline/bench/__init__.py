"""Engine-level benchmarks: what each strategy costs against greedy, measured in one run."""
