"""Demos, scenarios and their reports, apart from the applications they show: each runs
an application end to end on simulated data through the platform's real parts."""
