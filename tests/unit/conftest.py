# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hypothesis keeps its example database and its cache of the constants it found in the code
under test in `.hypothesis/` of the working directory: the checkout, with the absolute paths
of the files it read. The unit tests write nothing outside their temporary folders, so its
home is a temporary folder of this session, removed at exit, and no example database is kept
(every run draws afresh; a failure prints its falsifying example)."""

from __future__ import annotations

import atexit
import shutil
import tempfile

from hypothesis import configuration, settings

_HOME = tempfile.mkdtemp(prefix="m365ops-hypothesis-")
atexit.register(shutil.rmtree, _HOME, True)
configuration.set_hypothesis_home_dir(_HOME)
settings.register_profile("m365ops", database=None)
settings.load_profile("m365ops")
