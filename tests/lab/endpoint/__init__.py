# Copyright (c) 2026 m365ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's WS-Man endpoint: HTTP(S) listener, authentication, the cmd shell and the PowerShell plugin."""
