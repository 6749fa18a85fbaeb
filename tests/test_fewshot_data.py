"""Few-shot loaders on tiny folders generated in the real Omniglot / Mini-ImageNet layouts, the embedded
digits, and ``sample_tasks``'s task structure."""
import random

import jax
import numpy as np
import pytest
from PIL import Image

from surrogate.data import check_task_shape, load_fewshot, sample_tasks
from surrogate.errors import ConfigError

ALPHABETS = {"images_background": ["Alpha", "Gamma"], "images_evaluation": ["Beta"]}
CHARS, DRAWINGS, NUM_TRAIN = 3, 4, 6


def _glyph(index: int, drawing: int) -> Image.Image:
    """A 105x105 black-on-white 1-bit glyph, asymmetric (an L of character-specific place and size)."""
    a = np.ones((105, 105), bool)
    r, c = 8 + 7 * (index % 4), 10 + 9 * (index // 4)
    a[r:r + 40 + 3 * drawing, c:c + 12] = False
    a[r + 30:r + 42, c:c + 30 + 4 * (index % 3)] = False
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    root = tmp_path_factory.mktemp("omniglot")
    names, index = [], 0
    for folder, alphabets in ALPHABETS.items():
        for alphabet in alphabets:
            for k in range(CHARS):
                d = root / folder / alphabet / f"character{k + 1:02d}"
                d.mkdir(parents=True)
                for j in range(DRAWINGS):
                    _glyph(index, j).save(d / f"{index:04d}_{j + 1:02d}.png")
                names.append((alphabet, d))
                index += 1
    ordered = [d for _, d in sorted(names, key=lambda t: (t[0], t[1].name))]  # Reptile: sorted alphabets, pooled
    return root, ordered


def _pil28(path):
    return np.asarray(Image.open(path).resize((28, 28)), np.float32)  # Reptile's read: resize, no inversion


def test_omniglot_shapes_split_and_rotations(omniglot):
    root, ordered = omniglot
    train = load_fewshot(f"omniglot:{root}", "train", omniglot_train_characters=NUM_TRAIN)
    test = load_fewshot(f"omniglot:{root}", "test", omniglot_train_characters=NUM_TRAIN)
    assert train.shape == (4 * NUM_TRAIN, DRAWINGS, 28, 28, 1) and train.dtype == np.float32
    assert test.shape == (len(ordered) - NUM_TRAIN, DRAWINGS, 28, 28, 1)  # test is not rotated (Reptile)
    assert set(np.unique(train)) == {0.0, 1.0}  # 1-bit PNGs: background 1, strokes 0
    order = list(range(len(ordered)))
    random.Random(0).shuffle(order)  # Reptile's random.seed(0); random.shuffle
    for i, c in enumerate(order[:NUM_TRAIN]):
        first = _pil28(sorted(ordered[c].glob("*.png"))[0])
        np.testing.assert_array_equal(train[4 * i, 0, ..., 0], first)
        first_file = sorted(ordered[c].glob("*.png"))[0]
        rotated = np.asarray(Image.open(first_file).resize((28, 28)).rotate(90), np.float32)
        np.testing.assert_array_equal(train[4 * i + 1, 0, ..., 0], rotated)  # PIL's rotate(90) = class 4c+1
        for r in range(4):
            np.testing.assert_array_equal(train[4 * i + r], np.rot90(train[4 * i], r, axes=(1, 2)))
        assert not np.array_equal(train[4 * i + 1], train[4 * i])
    test_firsts = [_pil28(sorted(ordered[c].glob("*.png"))[0]) for c in order[NUM_TRAIN:]]
    np.testing.assert_array_equal(test[:, 0, ..., 0], np.stack(test_firsts))
    train_ids = {train[4 * i, 0].tobytes() for i in range(NUM_TRAIN)}
    assert train_ids.isdisjoint({t[0].tobytes() for t in test})  # disjoint characters
    again = load_fewshot(f"omniglot:{root}", "train", omniglot_train_characters=NUM_TRAIN)  # from the cache
    assert (root / "omniglot28.npz").is_file()
    np.testing.assert_array_equal(again, train)


def test_omniglot_bad_layouts(omniglot, tmp_path):
    root, _ = omniglot
    with pytest.raises(ConfigError, match="images_evaluation"):
        (tmp_path / "images_background").mkdir()
        load_fewshot(f"omniglot:{tmp_path}", "train")
    with pytest.raises(ConfigError, match="does not exist"):
        load_fewshot(f"omniglot:{tmp_path / 'nowhere'}", "train")
    with pytest.raises(ConfigError, match="'train' and 'test' only"):
        load_fewshot(f"omniglot:{root}", "val")
    with pytest.raises(ConfigError, match="more than 1200"):
        load_fewshot(f"omniglot:{root}", "train")  # 9 characters cannot make Reptile's 1200-character split
    with pytest.raises(ConfigError, match="split"):
        load_fewshot("digits", "validation")
    with pytest.raises(ConfigError, match="Unknown few-shot dataset"):
        load_fewshot("cifar:/x", "train")


COLOURS = {"n01": (200, 30, 30), "n02": (30, 200, 30), "n03": (30, 30, 200), "n04": (200, 200, 30),
           "n05": (30, 200, 200), "n06": (120, 120, 120), "n07": (250, 250, 250)}
MINI_SPLITS = {"train": ["n03", "n01", "n02"], "val": ["n04", "n05"], "test": ["n06", "n07"]}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    (root / "images").mkdir()
    for split, labels in MINI_SPLITS.items():
        rows = ["filename,label"]
        for label in labels:
            for j in range(5 if label == "n01" else 4):  # n01 has one more: truncated to the smallest class
                name = f"{label}{j:08d}.jpg"
                size = (84, 84) if j == 0 else (100, 90)
                Image.new("RGB", size, COLOURS[label]).save(root / "images" / name, quality=95)
                rows.append(f"{name},{label}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_miniimagenet_shapes_classes_and_splits(mini):
    seen = set()
    for split, labels in MINI_SPLITS.items():
        x = load_fewshot(f"miniimagenet:{mini}", split)
        assert x.shape == (len(labels), 4, 84, 84, 3) and x.dtype == np.float32
        for i, label in enumerate(sorted(labels)):  # classes in sorted label order
            np.testing.assert_allclose(x[i].mean(axis=(0, 1, 2)), np.array(COLOURS[label]) / 255, atol=0.02)
        assert seen.isdisjoint(labels)
        seen |= set(labels)
    val = load_fewshot(f"miniimagenet:{mini}", "val")
    np.testing.assert_array_equal(load_fewshot(f"miniimagenet:{mini}", "val"), val)  # deterministic (cached)


def test_miniimagenet_bad_layouts(mini, tmp_path):
    with pytest.raises(ConfigError, match="val.csv"):
        (tmp_path / "images").mkdir()
        (tmp_path / "train.csv").write_text("filename,label\n")
        load_fewshot(f"miniimagenet:{tmp_path}", "val")
    (tmp_path / "val.csv").write_text("filename,label\nabsent.jpg,n01\n")
    with pytest.raises(ConfigError, match="missing"):
        load_fewshot(f"miniimagenet:{tmp_path}", "val")
    with pytest.raises(ConfigError, match="filename,label"):
        load_fewshot(f"miniimagenet:{tmp_path}", "train")


def test_digits_embedded_default():
    train, test = load_fewshot("digits", "train"), load_fewshot("digits", "test")
    assert train.shape == test.shape == (20, 174, 8, 8, 1)
    assert 0.0 <= train.min() and train.max() <= 1.0
    np.testing.assert_array_equal(train[1], np.rot90(train[0], 1, axes=(1, 2)))
    assert {x.tobytes() for x in train[::4, 0]}.isdisjoint({x.tobytes() for x in test[::4, 0]})
    with pytest.raises(ConfigError, match="no 'val'"):
        load_fewshot("digits", "val")


N_WAY, K_SHOT, N_QUERY, TASKS = 5, 2, 3, 64


@pytest.fixture(scope="module")
def tasks():
    classes, per_class = 12, 7
    images = np.zeros((classes, per_class, 4, 4, 1), np.float32)
    images[:, :, 0, 0, 0] = np.arange(classes)[:, None]  # pixel (0, 0) names the class,
    images[:, :, 0, 1, 0] = np.arange(per_class)[None, :]  # pixel (0, 1) the example
    f = jax.jit(sample_tasks, static_argnums=(2, 3, 4, 5))
    return jax.device_get(f(jax.random.key(3), images, TASKS, N_WAY, K_SHOT, N_QUERY))


def test_sample_tasks_structure(tasks):
    xs, ys, xq, yq = tasks
    assert xs.shape == (TASKS, N_WAY * K_SHOT, 4, 4, 1) and xq.shape == (TASKS, N_WAY * N_QUERY, 4, 4, 1)
    assert ys.dtype == yq.dtype == np.int32 and ys.shape == (TASKS, N_WAY * K_SHOT)
    firsts = set()
    for t in range(TASKS):
        cs, es, cq, eq = xs[t, :, 0, 0, 0], xs[t, :, 0, 1, 0], xq[t, :, 0, 0, 0], xq[t, :, 0, 1, 0]
        assert len(set(cs)) == N_WAY and set(cq) == set(cs)  # n_way distinct classes, the same in the query
        label_of = dict(zip(cs, ys[t]))
        assert sorted(label_of.values()) == list(range(N_WAY))  # a bijection onto 0..n_way-1
        assert all(label_of[c] == y for c, y in zip(cq, yq[t]))  # query labels agree with the support
        for c in set(cs):
            support, query = set(es[cs == c]), set(eq[cq == c])
            assert len(support) == K_SHOT and len(query) == N_QUERY and support.isdisjoint(query)
        firsts.add(int(ys[t, 0]))
    assert len(firsts) > 1  # labels are permuted across tasks


def test_task_shape_errors():
    check_task_shape((10, 5, 28, 28, 1), 10, 2, 3)
    with pytest.raises(ConfigError, match="n_way=11"):
        check_task_shape((10, 5, 28, 28, 1), 11, 1, 1)
    with pytest.raises(ConfigError, match="examples per class"):
        check_task_shape((10, 5, 28, 28, 1), 5, 3, 3)
