# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Windows lab on loopback: a WinRM endpoint backed by pwsh (never shipped; see docs/lab.md)."""
