r"""2D image folders (PNG/JPG/JPEG/TIF/TIFF): list and pair files, decode images and masks.

Layout: ``<root>/<image_dir>/<stem>.<ext>`` and ``<root>/<mask_dir>/<stem>.<ext>``; an image and its mask share
the file stem (extensions may differ: ``x.jpg`` + ``x.png``). Decoded images are channel-first ``(C,H,W)`` in
their stored dtype (grey -> 1 channel, colour -> 3, alpha dropped); masks are ``(H,W)`` integer label maps
(palette PNGs give their palette indices).

TIFF stacks (tifffile): a multi-page TIFF (an EM volume, a z-stack) holds slices, each page a sample
``<stem>_z012`` whose case the case regex finds in that name (``p(\d+)``: the stem's; ``z(\d+)``: one case per
page); its mask is a TIFF with as many pages. 16-bit colour TIFFs keep their 16 bits.
Single-page TIFFs of at most 8 bits a channel are decoded by Pillow like the other formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from weakseg.data.records import DataError, Record, case_id_from, few

__all__ = [
    "IMAGE_SUFFIXES",
    "is_tiff",
    "list_image_files",
    "read_folder_records",
    "read_image_file",
    "read_mask_file",
    "read_mask_stack",
    "read_tiff_stack",
    "tiff_pages",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
TIFF_SUFFIXES = (".tif", ".tiff")
_CHANNEL_AXES = "SC"  # tifffile's axes: S samples (RGB), C channels; Y, X the plane; any other a stack axis
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
        return [r for stem, p in images.items() for r in _records(stem, case_regex, p, None)]
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
    return [r for stem in sorted(images) for r in _records(stem, case_regex, images[stem], masks[stem])]


def _records(stem: str, case_regex: str, image: Path, mask: Path | None) -> list[Record]:
    """One record per file; a multi-page TIFF stack gives one per page (kind "tiff", slices along axis 0) named
    ``<stem>_z012``, whose case ``case_regex`` finds in that name, and its mask must have as many pages."""
    case = case_id_from(stem, case_regex)
    pages = tiff_pages(image) if is_tiff(image) else 1
    if pages == 1:
        if mask is not None and is_tiff(mask) and tiff_pages(mask) > 1:
            raise DataError(
                f"mask {mask} has {tiff_pages(mask)} pages, its image {image.name} one: {_PAGES_FIX}"
            )
        return [Record(stem, case, str(image), None if mask is None else str(mask))]
    if mask is not None and (not is_tiff(mask) or tiff_pages(mask) != pages):
        found = tiff_pages(mask) if is_tiff(mask) else 1
        raise DataError(f"mask {mask} has {found} page(s), its image {image.name} {pages}: {_PAGES_FIX}")
    label = None if mask is None else str(mask)
    names = [f"{stem}_z{i:03d}" for i in range(pages)]
    # the case regex reads the page's name: the stem's case (p(\d+)), or one case per page (z(\d+))
    return [
        Record(n, case_id_from(n, case_regex), str(image), label, "tiff", 0, i) for i, n in enumerate(names)
    ]


_PAGES_FIX = "a TIFF stack's mask is a TIFF with one label page per image page"


def is_tiff(path: str | Path) -> bool:
    return str(path).lower().endswith(TIFF_SUFFIXES)


def _tiff_series(path: str | Path) -> tuple[tuple[int, ...], str, np.dtype]:
    """(shape, axes, dtype) of the first image series of a TIFF, from its tags only (nothing decoded)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape), series.axes, np.dtype(series.dtype)
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist") from None
    except Exception as e:  # TiffFileError, struct.error, IndexError (no series)...
        raise DataError(
            f"cannot read {path} as a TIFF ({type(e).__name__}: {e}); the file is truncated or not a TIFF: "
            "re-export it or remove it"
        ) from e


def tiff_pages(path: str | Path) -> int:
    """Slices of a TIFF: the product of its axes other than the plane (Y, X) and the channels (S, C); 1 for
    a plain 2D image."""
    shape, axes, _ = _tiff_series(path)
    return int(np.prod([n for n, a in zip(shape, axes) if a not in "YX" + _CHANNEL_AXES], dtype=np.int64))


def _zchw(arr: np.ndarray, axes: str, path: str | Path) -> np.ndarray:
    """A TIFF series with tifffile's ``axes`` -> ``(Z, C, H, W)``: stack axes flattened into Z (file order),
    channel axes into C (alpha dropped, as for the other formats)."""
    if "Y" not in axes or "X" not in axes or arr.ndim != len(axes):
        raise DataError(f"{path}: TIFF axes {axes!r} of shape {arr.shape} hold no image plane (Y, X)")
    stack = [i for i, a in enumerate(axes) if a not in "YX" + _CHANNEL_AXES]
    chan = [i for i, a in enumerate(axes) if a in _CHANNEL_AXES]
    order = [*stack, *chan, axes.index("Y"), axes.index("X")]
    z = int(np.prod([arr.shape[i] for i in stack], dtype=np.int64))
    c = int(np.prod([arr.shape[i] for i in chan], dtype=np.int64))
    out = arr.transpose(order).reshape(z, c, arr.shape[axes.index("Y")], arr.shape[axes.index("X")])
    if "S" in axes and c in (2, 4):  # grey + alpha, RGBA
        out = out[:, : c - 1]
    return out


def read_tiff_stack(path: str | Path) -> np.ndarray:
    """Decode every page of a TIFF to ``(Z, C, H, W)`` in its stored dtype (tifffile; Pillow page by page for
    compressions tifffile leaves to the optional imagecodecs package, e.g. LZW)."""
    import tifffile

    shape, axes, dtype = _tiff_series(path)
    try:
        with tifffile.TiffFile(path) as tif:
            arr = tif.series[0].asarray()
    except ValueError as e:
        if "imagecodecs" not in str(e):
            raise DataError(f"cannot decode {path} ({e}); re-export it or remove it") from e
        if dtype.itemsize > 1 and any(a in axes for a in _CHANNEL_AXES):  # Pillow would cut its bits
            raise DataError(
                f"cannot decode {path}: its compression needs the imagecodecs package for a {dtype} colour "
                "TIFF: pip install imagecodecs, or re-save it uncompressed"
            ) from e
        arr, axes = _pil_pages(path), "QYXS"
    return np.ascontiguousarray(_zchw(arr, axes, path))


def _pil_pages(path: str | Path) -> np.ndarray:
    """Every page of a TIFF through Pillow: ``(pages, H, W, C)``."""
    with Image.open(path) as img:
        pages = []
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            page = np.asarray(img.copy())
            pages.append(page[..., None] if page.ndim == 2 else page)
    return np.stack(pages)


def read_mask_stack(path: str | Path) -> np.ndarray:
    """A multi-page TIFF mask -> ``(Z, H, W)`` label pages (grey colour pages give one channel)."""
    stack = read_tiff_stack(path)
    if stack.shape[1] > 1:
        if not (stack == stack[:, :1]).all():
            raise DataError(
                f"mask {path} has {stack.shape[1]} colour channels; masks must hold one label value per pixel "
                "(0 = background, 1..num_classes-1): save grey pages"
            )
    out = stack[:, 0]
    return out.astype(np.uint8) if out.dtype == bool else out


def _needs_tifffile(path: str | Path) -> bool:
    """A TIFF Pillow would read wrongly: more than one page (a stack) or colour above 8 bits a channel."""
    shape, axes, dtype = _tiff_series(path)
    colour = any(a in axes for a in _CHANNEL_AXES) and dtype.itemsize > 1
    return colour or any(n > 1 for n, a in zip(shape, axes) if a not in "YX" + _CHANNEL_AXES)


def _one_page(stack: np.ndarray, path: str | Path) -> np.ndarray:
    if len(stack) > 1:
        raise DataError(
            f"{path} is a TIFF stack of {len(stack)} pages, read here as one image: put it in a data folder "
            "(each page a slice of one case) or predict on it (a stack of labels comes back)"
        )
    return np.ascontiguousarray(stack[0])


def _open(path: str | Path) -> Image.Image:
    """Open and fully decode ``path``; any decoder failure becomes a DataError naming the file."""
    try:
        with Image.open(path) as img:
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


def read_image_file(path: str | Path) -> np.ndarray:
    """Decode an image file to ``(C,H,W)`` in its stored dtype: grey -> 1 channel, colour -> 3 (alpha dropped)."""
    if is_tiff(path) and _needs_tifffile(path):
        return _one_page(read_tiff_stack(path), path)
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
    if is_tiff(path) and _needs_tifffile(path):
        return _one_page(read_mask_stack(path), path)
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
