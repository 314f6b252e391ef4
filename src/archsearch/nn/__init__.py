"""Building blocks shared by the search spaces' networks."""
