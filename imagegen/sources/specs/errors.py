"""The one error of the YAML specs layer."""

from __future__ import annotations

from ...errors import InputError


class SpecError(InputError):
    """A spec file (or the ROOT layout) is wrong: one line naming the file, line, item, field and
    the fix, e.g. ``chapters/01.yaml:31: images[1] 'ch01-osk', field size: ...; use ...``.

    Raised while loading (before anything is paid for), while planning (a reference that no
    longer resolves) and while recording a result into a file that no longer parses.
    """
