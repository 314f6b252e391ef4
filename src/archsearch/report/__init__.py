"""Reports: plots and tables of runs and benchmarks."""
