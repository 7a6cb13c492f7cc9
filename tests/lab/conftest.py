# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from .fixtures import lab  # noqa: F401  (the module-scoped lab fixture)
