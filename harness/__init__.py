"""The evaluation harness: accelerate launch harness/run.py."""
