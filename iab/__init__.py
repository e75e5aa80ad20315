"""The ImageAttributionBench tools behind the ``iab`` command: build, verify, import, demo.

The benchmark itself (labels, folds, protocols, degradations) is defined in the module
``imageattributionbench``; these tools only apply that definition.
"""
