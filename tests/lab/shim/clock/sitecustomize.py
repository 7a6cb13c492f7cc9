# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imported by Python at start-up in every process that runs under the lab's moved clock
(tests/lab/shim/sandbox.py puts this folder on PYTHONPATH together with libfaketime).

libfaketime 0.9.10 with real monotonic clocks (FAKETIME_DONT_FAKE_MONOTONIC=1, which
.NET's and Python's timed waits need) rejects clock_nanosleep(CLOCK_MONOTONIC,
TIMER_ABSTIME) with EINVAL, and that is the one call behind time.sleep on Python 3.11+
(ansible-playbook's strategy loop, subprocess waits). select() with a timeout sleeps the
same without it.
"""

import os

if os.environ.get("FAKETIME") and "faketime" in os.environ.get("LD_PRELOAD", ""):
    import select
    import time

    def _sleep(seconds):
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        select.select([], [], [], seconds)

    time.sleep = _sleep
