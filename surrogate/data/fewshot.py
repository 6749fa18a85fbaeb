"""Few-shot classification data: N-way K-shot tasks over image classes (Vinyals et al. 2016; Finn et al.
2017, MAML, Sec. 5.2; Nichol et al. 2018, Reptile, Sec. 6).

``load_fewshot(name, split)`` returns every class of a split as one float32 array
``[num_classes, examples_per_class, H, W, C]`` in [0, 1]; ``sample_tasks`` draws tasks from it inside jit.

Names:

- ``"digits"`` (the embedded default): scikit-learn's copy of the UCI optical handwritten digits (1797
  8x8 images, values 0..16), shipped as ``surrogate/data/digits.csv.gz`` (the file of scikit-learn 1.9.1's
  ``load_digits``; BSD-3 / UCI CC BY 4.0), so no scikit-learn install is needed. Pixels are scaled to
  [0, 1] (ink = 1) and kept at 8x8x1: the conv net's 'SAME' pooling takes them to 1x1x64, and upsampled
  to Omniglot's 28x28 (as before 2026-11-30) they carried no more information for ~12x the arithmetic
  (5 tasks' conv-net gradients, vmapped: 129 ms at 28x28, 10.9 ms at 8x8 here).
  Classes: the even digits are ``train``, the odd digits ``test`` (so a 6 and its 180-degree twin, a 9,
  never share a task), each digit with its 0/90/180/270-degree rotations as four classes (as Omniglot's
  augmentation): 20 classes per split, truncated to 174 examples each (the smallest digit's count).
- ``"omniglot:PATH"``: ``PATH/images_background/<alphabet>/<character>/*.png`` and
  ``PATH/images_evaluation/...`` (Lake et al. 2015's 105x105 black-on-white PNGs). As openai/supervised-
  reptile (``supervised_reptile/omniglot.py``, ``run_omniglot.py``): the alphabets of both folders are
  pooled and read in sorted order, characters shuffled by ``random.seed(0); random.shuffle`` (reproduced
  with ``random.Random(0)``), the first 1200 are ``train`` and the rest ``test``; only ``train`` is
  augmented with 0/90/180/270-degree rotations as extra classes (class ``4 * c + r``, rotation ``90 r``
  counter-clockwise, PIL's and ``np.rot90``'s sense). Images are resized to 28x28 with PIL (nearest for
  the 1-bit PNGs) and not inverted: background 1, strokes 0, Reptile's values. Omniglot has no ``val``.
  The unrotated 28x28 images are cached as ``PATH/omniglot28.npz`` (uint8; never pickle) when ``PATH`` is
  writable, so later loads take about a second (it is rebuilt when the character folders or the number
  of drawings change; delete it after editing images in place).
- ``"miniimagenet:PATH"``: ``PATH/{train,val,test}.csv`` with ``filename,label`` rows (Ravi & Larochelle
  2017's split: 64/16/20 classes of 600) and the images in ``PATH/images/``; RGB, resized to 84x84
  (bicubic) when needed. Classes in sorted label order, examples in CSV order; each split is cached as
  ``PATH/miniimagenet84_<split>.npz`` (uint8). The full train split is 64*600*84*84*3 floats: 3.3 GB.
"""
import gzip
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from surrogate.errors import ConfigError

SPLITS = ("train", "val", "test")
OMNIGLOT_FOLDERS = ("images_background", "images_evaluation")
OMNIGLOT_TRAIN_CHARACTERS = 1200  # Reptile's split_dataset(num_train=1200)
OMNIGLOT_LAYOUT = "PATH/images_background/<alphabet>/<character>/*.png and PATH/images_evaluation/..."
MINI_LAYOUT = "PATH/train.csv, PATH/val.csv, PATH/test.csv (rows 'filename,label') and PATH/images/<filename>"
DIGITS_FILE = Path(__file__).with_name("digits.csv.gz")
DIGITS_SPLIT = {"train": (0, 2, 4, 6, 8), "test": (1, 3, 5, 7, 9)}


def load_fewshot(name: str, split: str, *, omniglot_train_characters: int = OMNIGLOT_TRAIN_CHARACTERS
                 ) -> np.ndarray:
    """All classes of ``split`` of dataset ``name`` as float32 ``[classes, examples, H, W, C]`` in [0, 1]
    (see the module docstring for the names, layouts and splits)."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {SPLITS}.")
    kind, _, path = name.partition(":")
    if kind == "digits" and not path:
        return _digits(split)
    if kind in ("omniglot", "miniimagenet") and path:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            layout = OMNIGLOT_LAYOUT if kind == "omniglot" else MINI_LAYOUT
            raise ConfigError(f"{kind} folder {folder} does not exist; expected {layout}.")
        if kind == "omniglot":
            return _omniglot(folder, split, omniglot_train_characters)
        return _miniimagenet(folder, split)
    raise ConfigError(f"Unknown few-shot dataset {name!r}; use 'digits', 'omniglot:PATH' or 'miniimagenet:PATH'.")


def rotations(images: np.ndarray) -> np.ndarray:
    """``[C, E, H, W, ch]`` -> ``[4 C, E, H, W, ch]``: class ``4 c + r`` is class ``c`` rotated by ``90 r``
    degrees counter-clockwise (Reptile's ``augment_dataset``; PIL's ``rotate(90 r)`` on square images)."""
    rotated = np.stack([np.rot90(images, r, axes=(2, 3)) for r in range(4)], axis=1)
    return rotated.reshape((-1,) + images.shape[1:])


def _digits(split: str) -> np.ndarray:
    if split not in DIGITS_SPLIT:
        raise ConfigError("The digits data has splits 'train' (even digits) and 'test' (odd digits), no 'val'.")
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :64].reshape(-1, 8, 8) / 16.0, table[:, 64].astype(int)
    per_class = np.bincount(labels).min()  # 174: every class truncated to the smallest one
    classes = [pixels[labels == digit][:per_class] for digit in DIGITS_SPLIT[split]]
    images = np.clip(np.stack(classes), 0.0, 1.0)[..., None]
    return rotations(images).astype(np.float32)


def _read_png28(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        if img.mode != "1":
            img = img.convert("L")
        array = np.asarray(img.resize((28, 28)))  # mode "1": PIL resizes nearest, as Reptile's resize
    return array.astype(np.uint8) * 255 if array.dtype == bool else array.astype(np.uint8)


def _omniglot_characters(folder: Path) -> list:
    missing = [f for f in OMNIGLOT_FOLDERS if not (folder / f).is_dir()]
    if missing:
        raise ConfigError(f"Omniglot folder {folder} lacks {', '.join(missing)}; expected {OMNIGLOT_LAYOUT}.")
    alphabets = sorted((a.name, a) for f in OMNIGLOT_FOLDERS for a in (folder / f).iterdir() if a.is_dir())
    characters = [c for _, a in alphabets for c in sorted(a.iterdir()) if c.is_dir()]
    if not characters:
        raise ConfigError(f"No character folders in {folder}; expected {OMNIGLOT_LAYOUT}.")
    return characters


def _omniglot(folder: Path, split: str, num_train: int) -> np.ndarray:
    if split == "val":
        raise ConfigError("Omniglot has splits 'train' and 'test' only (Reptile's 1200-character split).")
    characters = _omniglot_characters(folder)
    files = [sorted(str(p) for p in c.glob("*.png")) for c in characters]
    per_class = min(len(f) for f in files)
    if per_class == 0:
        empty = characters[[len(f) for f in files].index(0)]
        raise ConfigError(f"Omniglot character folder {empty} has no .png images; expected {OMNIGLOT_LAYOUT}.")
    if len(characters) <= num_train:
        raise ConfigError(f"Omniglot at {folder} has {len(characters)} characters; the split needs more than "
                          f"{num_train} (the first {num_train} after the shuffle are 'train').")
    names = np.array([str(c.relative_to(folder)) for c in characters])
    cache = folder / "omniglot28.npz"
    images = None
    if cache.is_file():
        with np.load(cache) as z:
            same = z["names"].shape == names.shape and (z["names"] == names).all()
            if same and z["images"].shape[1] == per_class:
                images = z["images"]
    if images is None:
        flat = [f for fs in files for f in fs[:per_class]]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes outside the GIL
            images = np.stack(list(pool.map(_read_png28, flat, chunksize=256)))
        images = images.reshape(len(characters), per_class, 28, 28)
        _save_cache(cache, images=images, names=names)
    order = list(range(len(characters)))
    random.Random(0).shuffle(order)  # Reptile: random.seed(0); random.shuffle(all_data)
    chosen = order[:num_train] if split == "train" else order[num_train:]
    out = images[np.array(chosen)][..., None]
    out = rotations(out) if split == "train" else out  # rotate the uint8s, then one float32 copy
    return np.multiply(out, np.float32(1 / 255), dtype=np.float32)


def _save_cache(path: Path, **arrays):
    """Write an .npz atomically (temp file + rename); skip silently where the data folder is read-only."""
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _read_rgb84(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (84, 84):
            img = img.resize((84, 84), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


def _miniimagenet(folder: Path, split: str) -> np.ndarray:
    csv, image_dir = folder / f"{split}.csv", folder / "images"
    for needed in (csv, image_dir):
        if not needed.exists():
            raise ConfigError(f"Mini-ImageNet at {folder} lacks {needed.name}; expected {MINI_LAYOUT}.")
    rows = [line.strip().split(",") for line in csv.read_text().splitlines() if line.strip()]
    if rows and rows[0] == ["filename", "label"]:
        rows = rows[1:]
    if not rows or any(len(r) != 2 for r in rows):
        raise ConfigError(f"{csv} must hold 'filename,label' rows; expected {MINI_LAYOUT}.")
    by_label = {}
    for filename, label in rows:
        by_label.setdefault(label, []).append(filename)
    per_class = min(len(v) for v in by_label.values())
    files = [str(image_dir / f) for label in sorted(by_label) for f in by_label[label][:per_class]]
    absent = [f for f in files if not os.path.isfile(f)]
    if absent:
        raise ConfigError(f"{len(absent)} images listed in {csv} are missing, e.g. {absent[0]}; "
                          f"expected {MINI_LAYOUT}.")
    cache, key = folder / f"miniimagenet84_{split}.npz", np.array(files)
    if cache.is_file():
        with np.load(cache) as z:
            if z["files"].shape == key.shape and (z["files"] == key).all():
                return z["images"].reshape(len(by_label), per_class, 84, 84, 3).astype(np.float32) / 255.0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = np.stack(list(pool.map(_read_rgb84, files, chunksize=64)))
    _save_cache(cache, images=images, files=key)
    return images.reshape(len(by_label), per_class, 84, 84, 3).astype(np.float32) / 255.0


def check_task_shape(images_shape, n_way: int, k_shot: int, n_query: int):
    """Raise ConfigError unless tasks of ``n_way`` classes with ``k_shot + n_query`` distinct examples each
    can be drawn from classes of shape ``images_shape = [classes, examples, H, W, C]`` (callable outside jit)."""
    if len(images_shape) != 5:
        raise ConfigError(f"Few-shot images must be [classes, examples, H, W, C], got shape {tuple(images_shape)}.")
    num_classes, per_class = images_shape[:2]
    if n_way < 1 or k_shot < 1 or n_query < 0:
        raise ConfigError(f"Need n_way >= 1, k_shot >= 1, n_query >= 0; got {n_way}, {k_shot}, {n_query}.")
    if n_way > num_classes:
        raise ConfigError(f"n_way={n_way} exceeds the {num_classes} classes of this split.")
    if k_shot + n_query > per_class:
        raise ConfigError(f"k_shot + n_query = {k_shot + n_query} exceeds the {per_class} examples per class.")


def sample_tasks(key, images, num_tasks: int, n_way: int, k_shot: int, n_query: int):
    """``num_tasks`` N-way K-shot tasks: ``(x_support [T, n_way*k_shot, H, W, C], y_support [T, n_way*k_shot],
    x_query [T, n_way*n_query, H, W, C], y_query [T, n_way*n_query])``, labels int32 in ``[0, n_way)``.

    Per task: ``n_way`` classes without replacement, ``k_shot + n_query`` examples without replacement
    within each class (the first ``k_shot`` support, the rest query, so they are disjoint), and labels a
    random permutation of the classes. Rows are class-major (``k_shot`` rows of one class, then the next).
    Jittable with ``num_tasks, n_way, k_shot, n_query`` static; keep ``images`` on device (``jnp.asarray``
    once) so a jitted caller does not copy it every call.
    """
    check_task_shape(images.shape, n_way, k_shot, n_query)
    num_classes, per_class = images.shape[:2]
    images = jnp.asarray(images)

    def one(k):
        k_class, k_example, k_label = jax.random.split(k, 3)
        classes = jax.random.permutation(k_class, num_classes)[:n_way]
        keys = jax.random.split(k_example, n_way)
        examples = jax.vmap(lambda kk: jax.random.permutation(kk, per_class)[:k_shot + n_query])(keys)
        x = images[classes[:, None], examples]  # [n_way, k_shot + n_query, H, W, C]
        labels = jax.random.permutation(k_label, n_way).astype(jnp.int32)
        flat = lambda a: a.reshape((-1,) + a.shape[2:])
        y_s = jnp.repeat(labels, k_shot)
        y_q = jnp.repeat(labels, n_query)
        return flat(x[:, :k_shot]), y_s, flat(x[:, k_shot:]), y_q

    return jax.vmap(one)(jax.random.split(key, num_tasks))
