"""Generation jobs: diffusers pipelines and image APIs -> raw shards (see generation/run.py)."""
