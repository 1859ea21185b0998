"""Statistics for comparing a candidate model with the baseline, pure functions: fixed-sample
(:mod:`modelbaton.stats.fixed_sample`) and anytime-valid sequential
(:mod:`modelbaton.stats.sequential`)."""
