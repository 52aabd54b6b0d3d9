"""YAML imagery specs (issue 13): chapter and location imagery files under a ROOT folder, the
pending images they describe, and the in-place record of each image generated.

The building blocks, pure where they can be (seed 004):

- :mod:`.schema`: the layout under ROOT and the typed records; :mod:`.load` reads and
  validates every file (:func:`load_root`), raising :class:`SpecError` before anything is paid;
- :mod:`.plan`: pending items -> :class:`Task` values (prompt, references, size, output path,
  fingerprint) with the CLI's filters (:func:`plan_tasks`);
- :mod:`.update`: :func:`record_result` writes a saved image back into its spec, atomically,
  under a lock, refusing stale results;
- :mod:`.yamlfile`: the ruamel.yaml round trip that keeps every other line as written;
- :mod:`.sizes`: a spec's ``size`` / ``quality`` -> Gemini's aspect ratio and size tier;
- :mod:`.routing`: which provider and model each file's tasks go to;
- :mod:`.earlier`: an image an earlier session made for a pending item and never recorded;
- :mod:`.source`: the job source ``image-gen.sh specs ROOT ...`` on the shared runner, whose
  after-save step is :func:`record_result`.

Field reference: ``samples/specs/README.md``.
"""

from .errors import SpecError
from .load import load_chapter, load_inventory, load_location, load_root
from .plan import Capabilities, Plan, Task, plan_tasks
from .schema import (
    Chapter,
    ChapterImage,
    Character,
    Defaults,
    Generated,
    Inventory,
    Location,
    LocationItem,
    ReferenceImage,
    Specs,
)
from .sizes import ImageSize, image_size
from .update import ImageResult, ItemRef, Outcome, Update, record_result

__all__ = [
    "Capabilities",
    "Chapter",
    "ChapterImage",
    "Character",
    "Defaults",
    "Generated",
    "ImageResult",
    "ImageSize",
    "Inventory",
    "ItemRef",
    "Location",
    "LocationItem",
    "Outcome",
    "Plan",
    "ReferenceImage",
    "SpecError",
    "Specs",
    "Task",
    "Update",
    "image_size",
    "load_chapter",
    "load_inventory",
    "load_location",
    "load_root",
    "plan_tasks",
    "record_result",
]
