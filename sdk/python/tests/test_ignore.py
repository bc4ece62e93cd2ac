"""The client-side ignore rules and packing, checked against the server's rules."""

import io
import os
import tarfile

import pytest

from trainyard._snapshot import IgnoreRules, collect_files, pack_directory


def write(root, rel, content="x"):
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(content)


@pytest.mark.parametrize("path,is_dir", [
    (".git", True), (".git", False), ("a/b/.git", True), ("sub/.git/config", False),
    ("__pycache__", True), ("x/__pycache__/y.py", False), ("m.pyc", False), ("a/b/m.pyc", False),
    (".ipynb_checkpoints", True), ("nb/.ipynb_checkpoints/n.ipynb", False),
    (".trainyard", True), (".trainyard/config.json", False),
    ("outputs", True), ("outputs/model.pt", False), ("logs", True), ("logs/a.log", False),
])
def test_defaults_ignore(path, is_dir):
    assert IgnoreRules().is_ignored(path, is_dir)


@pytest.mark.parametrize("path,is_dir", [
    ("train.py", False), ("src/outputs/a.py", False), ("src/outputs", True), ("src/logs", True),
    ("__pycache__", False),  # a file named so is no folder
    ("outputs", False),      # a file at the root named outputs is kept
    ("data/m.pyc.txt", False), (".gitignore", False), (".github/ci.yml", False),
])
def test_defaults_keep(path, is_dir):
    assert not IgnoreRules().is_ignored(path, is_dir)


def test_ignore_file_adds_and_negates():
    rules = IgnoreRules("# comment\n\n*.md\n!/logs/\ndata/\n/build\n**/tmp/**\nsecret?.txt\n"
                        "!keep.md\n*.ckpt\n!best.ckpt\n")
    assert rules.is_ignored("README.md")
    assert rules.is_ignored("docs/guide.md")
    assert not rules.is_ignored("keep.md")
    assert not rules.is_ignored("docs/keep.md")
    assert not rules.is_ignored("logs", True)
    assert not rules.is_ignored("logs/train.log")
    assert rules.is_ignored("outputs", True)
    assert rules.is_ignored("data", True)
    assert rules.is_ignored("nested/data/x.csv")
    assert not rules.is_ignored("data", False)  # "data/" matches folders only
    assert rules.is_ignored("build", True) and rules.is_ignored("build", False)
    assert not rules.is_ignored("src/build", True)  # anchored
    assert rules.is_ignored("a/tmp/b/c.txt")
    assert rules.is_ignored("tmp/c.txt")
    assert rules.is_ignored("secret1.txt") and not rules.is_ignored("secret12.txt")
    assert rules.is_ignored("x.ckpt") and not rules.is_ignored("best.ckpt")
    assert not rules.is_ignored("# comment")


def test_negation_cannot_reach_into_an_ignored_folder():
    rules = IgnoreRules("cache/\n!cache/keep.txt\n")
    assert rules.is_ignored("cache/keep.txt")


def test_inner_slash_anchors_and_double_star():
    rules = IgnoreRules("docs/*.txt\na/**/b\n**/foo\n[Tt]emp*\nlit\\#eral\n\\!bang\n")
    assert rules.is_ignored("docs/a.txt")
    assert not rules.is_ignored("docs/sub/a.txt")
    assert not rules.is_ignored("x/docs/a.txt")
    assert rules.is_ignored("a/b") and rules.is_ignored("a/x/y/b")
    assert rules.is_ignored("foo") and rules.is_ignored("p/q/foo")
    assert rules.is_ignored("Temp1") and rules.is_ignored("x/temp")
    assert rules.is_ignored("lit#eral")
    assert rules.is_ignored("!bang")


def test_trailing_spaces_and_escapes():
    rules = IgnoreRules("spaced   \nkeep\\ \n")
    assert rules.is_ignored("spaced")
    assert rules.is_ignored("keep ")


def test_pack_directory_leaves_out_ignored_files(tmp_path):
    root = str(tmp_path)
    for rel in ["train.py", "src/model.py", "src/outputs/keep.py", "outputs/model.pt",
                "logs/x.log", ".git/HEAD", "pkg/__pycache__/m.cpython-311.pyc", "m.pyc",
                ".trainyard/config.json", "data/big.bin", "notes.md", "keep.md"]:
        write(root, rel)
    write(root, ".trainyardignore", "data/\n*.md\n!keep.md\n")
    os.chmod(os.path.join(root, "train.py"), 0o755)
    os.symlink("train.py", os.path.join(root, "link.py"))
    with pytest.warns(UserWarning, match="symlink"):
        archive, size, files = pack_directory(root)
    with archive:
        data = archive.read()
    assert size == len(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    kept = sorted(name for name, m in members.items() if m.isfile())
    assert kept == [".trainyardignore", "keep.md", "src/model.py", "src/outputs/keep.py",
                    "train.py"]
    assert files == 5
    assert members["train.py"].mode == 0o755 and members["keep.md"].mode == 0o644
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


def test_pack_is_deterministic(tmp_path):
    write(str(tmp_path), "a.py", "print(1)")
    write(str(tmp_path), "b/c.py", "print(2)")
    first, _, _ = pack_directory(str(tmp_path))
    os.utime(os.path.join(str(tmp_path), "a.py"), (1, 1))
    second, _, _ = pack_directory(str(tmp_path))
    with first, second:
        assert first.read() == second.read()


def test_collect_prunes_ignored_folders(tmp_path):
    write(str(tmp_path), "node/.git/objects/x", "y")
    entries, skipped = collect_files(str(tmp_path))
    assert [rel for rel, _, _ in entries] == ["node"]
    assert skipped == []


def test_pack_refuses_a_file(tmp_path):
    write(str(tmp_path), "f.txt")
    with pytest.raises(NotADirectoryError):
        pack_directory(str(tmp_path / "f.txt"))
