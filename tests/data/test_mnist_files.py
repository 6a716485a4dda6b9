"""Finding and loading MNIST-format files: search order, layouts, errors, the pair task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sweeplab.data.idx import IdxFormatError, write_idx
from sweeplab.data.mnist import IDX_FILES, candidate_dirs, load_idx_pair, locate_idx_files
from sweeplab.errors import ConfigError, DataNotFoundError


def _touch_all(folder: Path, gz: bool = False) -> None:
    """Create empty files with the four standard names (locating only checks existence)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in IDX_FILES.values():
        (folder / (f"{stem}.gz" if gz else stem)).touch()


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loads_from_torchvision_layout(tmp_path: Path, write_subset, gz: bool):
    """Files in D/MNIST/raw (torchvision) load with data_dir=D, plain or gzip."""
    written = write_subset(tmp_path / "MNIST" / "raw", gz=gz)
    splits = load_idx_pair("mnist", tmp_path, (3, 5))
    assert all(p.parent == tmp_path / "MNIST" / "raw" for p in splits.files.values())
    assert all(p.name.endswith(".gz") == gz for p in splits.files.values())
    for X, y, images, labels in (
        (splits.X, splits.y, written["train_images"], written["train_labels"]),
        (splits.X_test, splits.y_test, written["test_images"], written["test_labels"]),
    ):
        keep = (labels == 3) | (labels == 5)
        assert X.shape == (keep.sum(), 784) and X.dtype == np.float64
        assert y.dtype == np.float64
        # first digit -> -1, second -> +1, file order kept
        np.testing.assert_array_equal(y, np.where(labels[keep] == 3, -1.0, 1.0))
        # pixels flattened row-major and scaled to [0, 1]
        np.testing.assert_array_equal(X, images[keep].reshape(-1, 784) / 255.0)
        assert X.min() >= 0.0 and X.max() <= 1.0


def test_digit_order_decides_the_sign(tmp_path: Path, write_subset):
    """Swapping the pair swaps the labels and nothing else."""
    write_subset(tmp_path)
    a = load_idx_pair("mnist", tmp_path, (3, 5))
    b = load_idx_pair("mnist", tmp_path, (5, 3))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, -b.y)


def test_search_order_for_a_data_dir(tmp_path: Path):
    """D, then D/MNIST/raw, then D/mnist; plain files preferred to their .gz twins."""
    assert candidate_dirs("mnist", tmp_path) == [
        tmp_path,
        tmp_path / "MNIST" / "raw",
        tmp_path / "mnist",
    ]
    assert candidate_dirs("fashion-mnist", tmp_path) == [
        tmp_path,
        tmp_path / "FashionMNIST" / "raw",
        tmp_path / "fashion-mnist",
    ]
    _touch_all(tmp_path / "mnist")
    assert locate_idx_files("mnist", tmp_path)["train_images"].parent == tmp_path / "mnist"
    _touch_all(tmp_path / "MNIST" / "raw", gz=True)
    found = locate_idx_files("mnist", tmp_path)["train_images"]
    assert found == tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    _touch_all(tmp_path / "MNIST" / "raw", gz=False)
    found = locate_idx_files("mnist", tmp_path)["train_images"]
    assert found == tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    _touch_all(tmp_path)
    assert locate_idx_files("mnist", tmp_path)["test_labels"].parent == tmp_path


def test_fashion_mnist_does_not_take_mnist_layout(tmp_path: Path):
    """D/MNIST/raw holds MNIST, not Fashion-MNIST: it must not be picked for the latter."""
    _touch_all(tmp_path / "MNIST" / "raw")
    with pytest.raises(DataNotFoundError):
        locate_idx_files("fashion-mnist", tmp_path)
    _touch_all(tmp_path / "FashionMNIST" / "raw")
    found = locate_idx_files("fashion-mnist", tmp_path)["train_images"]
    assert found.parent == tmp_path / "FashionMNIST" / "raw"


def test_default_dirs_env_var_then_dot_data(
    tmp_path: Path, no_default_dirs: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without data_dir: $SWEEPLAB_DATA_DIR first, then ./data (each with its layouts)."""
    _touch_all(no_default_dirs / "data" / "MNIST" / "raw")
    found = locate_idx_files("mnist", None)["train_images"]
    assert found.resolve().parent == (no_default_dirs / "data" / "MNIST" / "raw").resolve()
    env_dir = tmp_path / "env"
    _touch_all(env_dir / "mnist")
    monkeypatch.setenv("SWEEPLAB_DATA_DIR", str(env_dir))
    assert locate_idx_files("mnist", None)["train_images"].parent == env_dir / "mnist"


def test_missing_files_error_lists_every_folder_and_what_to_pass(tmp_path: Path):
    """The error names each folder searched, the file names and the --data_dir flag."""
    empty = tmp_path / "empty"
    with pytest.raises(DataNotFoundError) as info:
        locate_idx_files("mnist", empty)
    err = info.value
    assert isinstance(err, ConfigError)  # the CLI turns it into exit status 2
    msg = str(err)
    for folder in (empty, empty / "MNIST" / "raw", empty / "mnist"):
        assert str(folder) in err.looked_in and str(folder) in msg
    assert "--data_dir" in msg and "MNIST/raw" in msg
    for stem in IDX_FILES.values():
        assert f"{stem}[.gz]" in msg


def test_explicit_data_dir_never_falls_back_to_system_copy(tmp_path: Path, fashion_dir):
    """An explicit but wrong data_dir is an error even though a system copy exists."""
    with pytest.raises(DataNotFoundError) as info:
        locate_idx_files("fashion-mnist", tmp_path)
    assert str(fashion_dir) not in info.value.looked_in


def test_default_search_finds_the_debian_fashion_mnist(no_default_dirs: Path, fashion_dir):
    """Without data_dir, Fashion-MNIST is found where Debian's package installs it."""
    files = locate_idx_files("fashion-mnist", None)
    assert {p.parent for p in files.values()} == {fashion_dir}
    assert candidate_dirs("fashion-mnist", None)[-1] == fashion_dir


def test_default_search_error_lists_default_dirs(no_default_dirs: Path):
    """MNIST has no system copy: the error lists ./data's folders and mentions the env var."""
    with pytest.raises(DataNotFoundError) as info:
        locate_idx_files("mnist", None)
    assert info.value.looked_in == ["data", "data/MNIST/raw", "data/mnist"]
    assert "SWEEPLAB_DATA_DIR" in str(info.value)


def test_partly_filled_folder_says_which_files_are_missing(tmp_path: Path):
    """A folder with some of the files: the error names the ones it lacks."""
    _touch_all(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        locate_idx_files("mnist", tmp_path)


def test_unknown_dataset_name_is_a_config_error(tmp_path: Path):
    """Only mnist and fashion-mnist are MNIST-format datasets."""
    with pytest.raises(ConfigError, match="mnist, fashion-mnist"):
        locate_idx_files("cifar10", tmp_path)


def test_labels_not_matching_images_name_the_file(tmp_path: Path, write_subset):
    """Mismatched image and label files fail when read, naming the labels file."""
    written = write_subset(tmp_path, gz=False)
    bad = tmp_path / "train-labels-idx1-ubyte"
    write_idx(written["train_labels"][:-1], bad)
    with pytest.raises(IdxFormatError, match="do not match") as info:
        load_idx_pair("mnist", tmp_path, (3, 5))
    assert str(bad) in str(info.value)


def test_class_absent_from_a_split_is_a_digits_error(tmp_path: Path, write_subset):
    """A pair whose class has no sample in a split cannot make a binary task."""
    written = write_subset(tmp_path, gz=False)
    labels = written["test_labels"].copy()
    labels[labels == 5] = 4
    write_idx(labels, tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(ConfigError, match="class 5 has no sample") as info:
        load_idx_pair("mnist", tmp_path, (3, 5))
    assert info.value.key == "digits"
