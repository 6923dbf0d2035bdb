"""2D image folders (PNG/JPG/JPEG/TIF/TIFF): list and pair files, decode images and masks.

Layout: ``<root>/<image_dir>/<stem>.<ext>`` and ``<root>/<mask_dir>/<stem>.<ext>``; an image and its mask share
the file stem (extensions may differ: ``x.jpg`` + ``x.png``). Decoded images are channel-first ``(C,H,W)`` in
their stored dtype (grey -> 1 channel, colour -> 3, alpha dropped); masks are ``(H,W)`` integer label maps
(palette PNGs give their palette indices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from weakseg.data.records import DataError, Record, case_id_from, few

__all__ = ["IMAGE_SUFFIXES", "list_image_files", "read_folder_records", "read_image_file", "read_mask_file"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LAYOUT = "<root>/<image_dir>/NAME.png|jpg|tif and <root>/<mask_dir>/NAME.png (one mask per image, same NAME)"


def list_image_files(folder: str | Path) -> dict[str, Path]:
    """Map file stem -> path for the image files in ``folder`` (hidden files and other suffixes are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist; expected the layout {LAYOUT}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"{found[path.stem].name} and {path.name} in {folder} have the same name; "
                "keep one file per name so images and masks pair unambiguously"
            )
        found[path.stem] = path
    return found


def read_folder_records(
    image_dir: str | Path, mask_dir: str | Path | None = None, case_regex: str = r"p(\d+)"
) -> list[Record]:
    """Pair images and masks by file stem. ``mask_dir=None``: an images-only folder (unlabeled / prediction)."""
    images = list_image_files(image_dir)
    if not images:
        raise DataError(
            f"data folder {image_dir} holds no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images; "
            f"expected the layout {LAYOUT}"
        )
    if mask_dir is None:
        return [Record(stem, case_id_from(stem, case_regex), str(p)) for stem, p in images.items()]
    masks = list_image_files(mask_dir)
    no_mask, no_image = set(images) - set(masks), set(masks) - set(images)
    if no_mask or no_image:
        parts = []
        if no_mask:
            parts.append(f"{len(no_mask)} image(s) in {image_dir} have no mask in {mask_dir}: {few(no_mask)}")
        if no_image:
            parts.append(
                f"{len(no_image)} mask(s) in {mask_dir} have no image in {image_dir}: {few(no_image)}"
            )
        raise DataError(
            "; ".join(parts) + ". Every image needs a mask with the same file name (extension may differ); "
            "move unlabeled images to their own folder"
        )
    return [
        Record(stem, case_id_from(stem, case_regex), str(images[stem]), str(masks[stem]))
        for stem in sorted(images)
    ]


def _open(path: str | Path) -> Image.Image:
    """Open and fully decode ``path``; any decoder failure becomes a DataError naming the file."""
    try:
        with Image.open(path) as img:
            _check_tiff(img, path)
            img.load()
            return img.copy()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, struct.error... on bad files
        raise DataError(
            f"cannot decode {path} ({type(e).__name__}: {e}); the file is truncated or not an image: "
            "re-export it or remove it"
        ) from e


def _check_tiff(img: Image.Image, path: str | Path) -> None:
    """What Pillow would read wrongly without a word: more than one page, or colour above 8 bits a channel."""
    if img.format != "TIFF":
        return
    pages = getattr(img, "n_frames", 1)
    if pages > 1:
        raise DataError(
            f"{path} is a multi-page TIFF ({pages} pages); only the first page would be read: save one file per "
            "page (2D slices) or store the volume as NIfTI (data.source: nifti)"
        )
    bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None  # BitsPerSample
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,) if bits else ()
    if len(bits) >= 3 and max(bits) > 8:
        raise DataError(
            f"{path} is a {max(bits)}-bit colour TIFF; Pillow reads colour at 8 bits a channel, which would cut "
            "its values: save it as 8-bit RGB, or as one 16-bit grey file per channel"
        )


def read_image_file(path: str | Path) -> np.ndarray:
    """Decode an image file to ``(C,H,W)`` in its stored dtype: grey -> 1 channel, colour -> 3 (alpha dropped)."""
    img = _open(path)
    if img.mode in ("1", "LA", "La"):
        img = img.convert("L")
    elif img.mode == "P":
        img = img.convert("RGB")
        rgb = np.asarray(img)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return np.ascontiguousarray(rgb[None, ..., 0])  # a grey palette image stays grey
    elif img.mode not in ("L", "RGB", "I", "F") and not img.mode.startswith("I;16"):
        img = img.convert("RGB")  # RGBA, CMYK, YCbCr, ...
    arr = np.asarray(img)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr[None])
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def read_mask_file(path: str | Path) -> np.ndarray:
    """Decode a mask file to an ``(H,W)`` label map (palette PNG -> palette indices; grey RGB -> one channel)."""
    img = _open(path)
    arr = np.asarray(img)
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            arr = arr[..., 0]
        elif arr.shape[2] == 2:  # LA
            arr = arr[..., 0]
        else:
            raise DataError(
                f"mask {path} is a colour ({img.mode}) image; masks must hold one label value per pixel "
                "(0 = background, 1..num_classes-1): save it as a grey or palette PNG"
            )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr)
