"""The recommendations application's demo, load and swap drivers, and report."""
