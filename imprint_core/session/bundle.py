"""The project zip: one file holding classes, images, settings and the head; written and read.

Layout of the zip (format ``imprint-project``, version 1)::

    project.json               class names and order, display names of the images, settings,
                               preset, backbone, format version
    images/00/0000.jpg ...     the stored images (the files' own bytes, or PNG copies; see
                               session.uploads), one numbered folder per class
    head.safetensors           the head, if there is one (tensors + JSON, never pickled)

Opening validates the zip with the rules of every other upload: the images come through
``intake.iter_zip_images`` (member count, sizes and unpacked bytes capped, no paths taken from the
zip) and ``Project.import_images`` (class names, image limits, every image decoded and checked);
the head through ``Project.load_head`` (checksums, backbone and dimension). A refused file leaves
no project and no files behind. ``downloads.save_project`` and ``opening.open_project`` are the
entry points.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .intake import check_zip_directory, iter_zip_images, shown_name
from .limits import MAX_CLASSES, MAX_UPLOAD_MB, ProjectError
from .names import validate_class_name
from .quotas import MAX_HEAD_MB

FORMAT = "imprint-project"
FORMAT_VERSION = 1
MANIFEST = "project.json"
HEAD = "head.safetensors"
MAX_MANIFEST_BYTES = 2 * 2**20  # names of at most 1,000 images and 20 classes fit many times
MAX_HEAD_BYTES = MAX_HEAD_MB * 2**20  # the limit of a head file loaded on its own
MAX_DISPLAY_NAME = 255


# ---- save ----------------------------------------------------------------------------------------
def _manifest(project) -> dict[str, Any]:
    from .. import __version__

    classes = []
    for i, entry in enumerate(project.classes):
        images = [
            {"file": f"{j:04d}{item.path.suffix}", "name": item.name}
            for j, item in enumerate(entry.images)
        ]
        classes.append({"name": entry.name, "folder": f"{i:02d}", "images": images})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "classes": classes,
        "settings": dict(project.settings),
        "augment": list(project.augment),  # support augmentation (imprint_core.augment)
        "preset": project.preset,
        "backbone": project.backbone_name,
        "head": HEAD if project.head is not None else None,
        "head_source": project.head_source if project.head is not None else "",
        "stale": bool(project.stale),
    }


def project_key(project) -> tuple:
    """What a saved zip is made of: the manifest, the images and the head. A download is
    withdrawn when this changes (session.views)."""
    manifest = {k: v for k, v in _manifest(project).items() if k != "library_version"}
    images = tuple(i.key for c in project.classes for i in c.images)
    return (project.head_serial, json.dumps(manifest, sort_keys=True, default=str), images)


def write_project(project, path: Path) -> Path:
    """Write ``project`` to the zip ``path`` (written whole or not at all; the caller holds the
    project's lock: ``downloads.save_project``); returns the path."""
    if path.suffix.lower() != ".zip":
        raise ProjectError(f"A saved project is a .zip file; '{path.name}' does not end in .zip.")
    manifest = _manifest(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".zip.tmp", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
            for entry, spec in zip(project.classes, manifest["classes"], strict=True):
                for item, image in zip(entry.images, spec["images"], strict=True):
                    member = f"images/{spec['folder']}/{image['file']}"
                    # JPEG, PNG and WebP are compressed already: stored, not deflated again
                    zf.write(item.path, member, compress_type=zipfile.ZIP_STORED)
            if project.head is not None:
                with tempfile.TemporaryDirectory() as folder:
                    head = Path(folder) / HEAD
                    project.head.save(head, backbone=project.backbone_name)
                    zf.write(head, HEAD, compress_type=zipfile.ZIP_STORED)
        os.replace(tmp, path)  # a reader never sees half a project
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---- open ----------------------------------------------------------------------------------------
def _read_member(zf: zipfile.ZipFile, name: str, cap: int, label: str) -> bytes:
    """A member's bytes, reading at most ``cap + 1`` whatever its header claims."""
    try:
        with zf.open(name) as fh:
            data = fh.read(cap + 1)
    except KeyError:
        raise ProjectError(
            f"'{label}' is not a saved IMPRINT project (it has no {name})."
        ) from None
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
        raise ProjectError(f"'{label}' is damaged: {name} cannot be read ({exc}).") from None
    if len(data) > cap:
        raise ProjectError(f"'{label}': {name} is larger than {cap // 2**20} MB.")
    return data


def _check_manifest(meta: Any, label: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ProjectError(
            f"'{label}' is not a saved IMPRINT project (project.json says otherwise)."
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ProjectError(f"'{label}' is damaged: its format version {version!r} is not valid.")
    if version > FORMAT_VERSION:
        raise ProjectError(
            f"'{label}' was saved by a newer version of IMPRINT (project format {version}, "
            f"{meta.get('library_version', 'unknown')}); this version opens format "
            f"{FORMAT_VERSION} and older. Update IMPRINT to open it."
        )
    classes = meta.get("classes")
    if not isinstance(classes, list) or not isinstance(meta.get("settings"), dict):
        raise ProjectError(f"'{label}' is damaged: project.json lacks its classes or settings.")
    if len(classes) > MAX_CLASSES:
        raise ProjectError(f"'{label}' holds {len(classes)} classes; at most {MAX_CLASSES}.")
    folders = [spec.get("folder") if isinstance(spec, dict) else None for spec in classes]
    if len(set(folders)) != len(folders):
        raise ProjectError(f"'{label}' is damaged: two classes of project.json share a folder.")
    names: list[str] = []
    for spec in classes:
        ok = isinstance(spec, dict) and isinstance(spec.get("images"), list)
        if not ok or not isinstance(spec.get("folder"), str):
            raise ProjectError(f"'{label}' is damaged: a class entry of project.json is invalid.")
        try:
            names.append(validate_class_name(spec.get("name"), names))
        except ProjectError as exc:
            raise ProjectError(f"'{label}': {exc}") from None
    return meta


def _records(zip_path: Path, meta: dict[str, Any], label: str):
    """(class name, display name, bytes) of every image, in the manifest's order."""
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    for spec in meta["classes"]:
        for image in spec["images"]:
            file = image.get("file") if isinstance(image, dict) else None
            if not isinstance(file, str):
                raise ProjectError(
                    f"'{label}' is damaged: an image entry of project.json is invalid."
                )
            shown = image.get("name")
            shown = shown if isinstance(shown, str) and shown.strip() else file
            wanted[(spec["folder"], file)] = (
                " ".join(spec["name"].split()),
                shown[:MAX_DISPLAY_NAME],
            )
    found: dict[tuple[str, str], bytes] = {}
    for folder, file, data in iter_zip_images(zip_path):
        if (folder, file) not in wanted:
            raise ProjectError(
                f"'{label}' is damaged: it holds the image '{folder}/{file}', which project.json "
                "does not list."
            )
        found[(folder, file)] = data
    missing = [k for k in wanted if k not in found]
    if missing:
        cls, shown = wanted[missing[0]]
        raise ProjectError(
            f"'{label}' is damaged: the image '{shown}' of class '{cls}' is missing "
            f"({len(missing)} images missing)."
        )
    return [(*wanted[k], found[k]) for k in wanted]


def _restore(project, zf, zip_path: Path, meta: dict[str, Any], label: str, backbone) -> None:
    from ..backbones import backbone_spec, list_backbones

    records = _records(zip_path, meta, label)
    if records:
        project.import_images(records, label)
    order = [" ".join(spec["name"].split()) for spec in meta["classes"]]
    for name in order:  # classes saved without images
        if project.find(name) is None:
            project.add_class(name)
    project.classes.sort(key=lambda entry: order.index(entry.name))
    preset = meta.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise ProjectError(f"'{label}' is damaged: its preset {preset!r} is not a name.")
    if preset is not None:
        project.set_settings(preset)
    try:
        project.set_settings(**meta["settings"])
    except TypeError as exc:  # a keyword this version does not know
        raise ProjectError(f"'{label}': its settings cannot be used here ({exc}).") from None
    project.set_augment(meta.get("augment", []))  # absent in older zips: off
    name = meta.get("backbone")
    if name is not None and name not in list_backbones():
        raise ProjectError(
            f"'{label}' uses the backbone '{name}', which this version does not offer "
            f"(available: {', '.join(list_backbones())})."
        )
    project.backbone_name = name
    if meta.get("head"):
        data = _read_member(zf, HEAD, MAX_HEAD_BYTES, label)
        with tempfile.TemporaryDirectory() as folder:
            head = Path(folder) / HEAD
            head.write_bytes(data)
            dims = {name: backbone_spec(name).dim for name in list_backbones()}
            project.load_head(head, available_backbones=list_backbones(), dims=dims)
        project.head_source = label
        imprinted = meta.get("head_source") == "imprinted" and meta.get("stale") is False
        if imprinted:
            _check_head_classes(project, label)
        if imprinted and backbone is not None and backbone.name == project.backbone_name:
            _reimprint(project, backbone)


def _check_head_classes(project, label: str) -> None:
    """A head saved as imprinted from the saved images must be of exactly their classes: it is
    put back as the imprinted head, and evidence and maps read its classes from the images
    (classes without images are not imprinted)."""
    head = sorted(str(c) for c in project.head.classes_)
    names = sorted(entry.name for entry in project.classes if entry.images)
    if head != names:
        shown = ", ".join(repr(c) for c in head[:5]) + (" ..." if len(head) > 5 else "")
        raise ProjectError(
            f"'{label}' is damaged: its head is of the classes {shown} but the project's classes "
            f"are {', '.join(repr(c) for c in names)}."
        )


def _reimprint(project, backbone) -> None:
    """Embed and imprint again, so that the project is in the state Imprint leaves (evidence,
    neighbours, maps), then keep the saved head: its predictions are the ones that were saved."""
    saved = project.head
    if any(not entry.images for entry in project.classes):
        return  # Imprint refuses empty classes; the saved head stays a loaded one
    project.train(backbone)
    project.head = saved


def read_project(project, path: str | os.PathLike, backbone=None) -> None:
    """Fill ``project`` (new, without classes) from a zip written by ``write_project``.

    Raises ProjectError with a sentence for damaged files, newer formats and anything an upload
    may not contain (``opening.open_project`` then discards the project and its files).
    """
    path = Path(path)
    label = shown_name(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise ProjectError(f"'{label}' could not be found (was the upload interrupted?).") from None
    if size > MAX_UPLOAD_MB * 2**20:
        raise ProjectError(
            f"'{label}' is {size / 2**20:.0f} MB; a project may be at most {MAX_UPLOAD_MB} MB."
        )
    check_zip_directory(path)  # the entry count from the end record, before zipfile reads it
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ProjectError(f"'{label}' is not a readable zip file (is it damaged?).") from None
    with zf:
        try:
            meta = json.loads(_read_member(zf, MANIFEST, MAX_MANIFEST_BYTES, label))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ProjectError(f"'{label}' is damaged: project.json is not valid JSON.") from None
        except RecursionError:  # json recurses once per level: '[[[[...' a million deep
            raise ProjectError(
                f"'{label}' is damaged: project.json is nested too deeply."
            ) from None
        try:
            _restore(project, zf, path, _check_manifest(meta, label), label, backbone)
        except ProjectError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # a project.json of the right shape whose values are not: still one sentence
            raise ProjectError(f"'{label}' is damaged: project.json is invalid ({exc}).") from None
