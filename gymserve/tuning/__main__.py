"""`python -m gymserve.tuning` < spec.json: the process of one trial (trial_process.py)."""

from gymserve.tuning.trial_process import main

main()
