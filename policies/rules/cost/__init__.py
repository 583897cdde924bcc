"""Cost: instance allow-lists per use, budgets from the cost model, runaway-job guards."""

CODE = "COST"
NAME = "cost"
