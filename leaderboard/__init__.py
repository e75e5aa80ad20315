"""The ImageAttributionBench leaderboard: a Gradio Space over a folder or dataset repo of
results files. ``data`` loads and tabulates (no UI), ``charts`` draws, ``ui`` builds the page and
``app`` is the entry point."""
