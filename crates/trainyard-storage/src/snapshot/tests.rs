use super::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, SystemTime};

const LIMIT: u64 = 1024 * 1024;

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// Sets a file's modification time to `secs` after the epoch.
fn touch(root: &Path, rel: &str, secs: u64) {
    let file = File::options().write(true).open(root.join(rel)).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Every file in a snapshot, by path.
fn contents(packed: &Packed) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    extract_to_dir(packed.open().unwrap(), dir.path()).unwrap();
    walkdir::WalkDir::new(dir.path())
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let rel = entry.path().strip_prefix(dir.path()).unwrap();
            let text = fs::read_to_string(entry.path()).unwrap();
            (rel.to_str().unwrap().to_owned(), text)
        })
        .collect()
}

/// A tar.gz with raw headers, as an arbitrary client might send.
fn raw_archive(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        // Written by hand: the builder refuses `..` and absolute paths.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o664);
        header.set_mtime(1_700_000_000);
        header.set_uid(1000);
        if kind.is_symlink() || kind.is_hard_link() {
            header.set_link_name(data).unwrap();
            header.set_size(0);
            header.set_cksum();
            tar.append(&header, io::empty()).unwrap();
        } else {
            header.set_size(data.len() as u64);
            header.set_cksum();
            tar.append(&header, data.as_bytes()).unwrap();
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn project(root: &Path) {
    write(root, "train.py", "print('hi')\n");
    write(root, "src/model.py", "class Model: ...\n");
    write(root, "src/outputs/__init__.py", "");
    write(root, "README.md", "# demo\n");
}

#[test]
fn same_content_gives_same_digest() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    project(first.path());
    // Reverse creation order and different times.
    for (rel, content) in [
        ("README.md", "# demo\n"),
        ("src/outputs/__init__.py", ""),
        ("src/model.py", "class Model: ...\n"),
        ("train.py", "print('hi')\n"),
    ] {
        write(second.path(), rel, content);
        touch(second.path(), rel, 1_000_000);
    }
    let (a, b) = (
        pack_dir(first.path(), LIMIT).unwrap(),
        pack_dir(second.path(), LIMIT).unwrap(),
    );
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.digest.len(), 64);
    assert_eq!((a.files, a.uncompressed), (4, 12 + 17 + 7));
    assert_eq!(a.size, fs::metadata(&a.path).unwrap().len());

    write(second.path(), "train.py", "print('bye')\n");
    assert_ne!(a.digest, pack_dir(second.path(), LIMIT).unwrap().digest);
}

#[test]
fn repack_of_a_client_archive_keeps_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    write(dir.path(), ".trainyardignore", "*.md\n");
    let packed = pack_dir(dir.path(), LIMIT).unwrap();
    let repacked = repack(packed.open().unwrap(), LIMIT).unwrap();
    assert_eq!(repacked.digest, packed.digest);
    assert_eq!(repacked.files, packed.files);
}

#[test]
fn repack_canonicalises_any_archive() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "train.py", "print('hi')\n");
    write(dir.path(), "src/model.py", "m\n");
    let expected = pack_dir(dir.path(), LIMIT).unwrap();

    use tar::EntryType as T;
    let upload = raw_archive(&[
        ("./src/model.py", T::Regular, "m\n"),
        (".git/HEAD", T::Regular, "ref: refs/heads/main\n"),
        ("./train.py", T::Regular, "print('hi')\n"),
        ("./src/", T::Directory, ""),
        ("./src/link", T::Symlink, "model.py"),
    ]);
    let repacked = repack(&upload[..], LIMIT).unwrap();
    assert_eq!(repacked.digest, expected.digest);
}

#[test]
fn ignore_rules_apply() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "main.py", "main");
    for ignored in [
        ".git/config",
        "__pycache__/m.cpython-312.pyc",
        "pkg/__pycache__/x.py",
        "stale.pyc",
        "outputs/model.bin",
        "logs/train.log",
        ".ipynb_checkpoints/nb.ipynb",
        ".trainyard/state",
        "data/big.bin",
        "debug.log",
    ] {
        write(root, ignored, "ignored");
    }
    write(root, "src/outputs/keep.py", "kept");
    write(root, "src/logs/keep.txt", "kept");
    write(root, "keep.log", "kept");
    write(
        root,
        ".trainyardignore",
        "# comment\n*.log\n!keep.log\ndata/\n",
    );

    let packed = pack_dir(root, LIMIT).unwrap();
    let files: Vec<String> = contents(&packed).into_keys().collect();
    assert_eq!(
        files,
        [
            ".trainyardignore",
            "keep.log",
            "main.py",
            "src/logs/keep.txt",
            "src/outputs/keep.py"
        ]
    );

    // The server applies the same rules to an archive that skipped none.
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    tar.append_dir_all(".", root).unwrap();
    let upload = tar.into_inner().unwrap().finish().unwrap();
    assert_eq!(repack(&upload[..], LIMIT).unwrap().digest, packed.digest);
}

#[test]
fn ignore_file_can_negate_a_default() {
    let rules = IgnoreRules::with_patterns("!/logs/\n").unwrap();
    assert!(!rules.is_ignored(Path::new("logs"), true));
    assert!(rules.is_ignored(Path::new("outputs"), true));
    assert!(rules.is_ignored(Path::new("a/b/.git"), true));
    assert!(rules.is_ignored(Path::new("x/__pycache__/y.py"), false));
    assert!(!IgnoreRules::defaults().is_ignored(Path::new("src/outputs/a.py"), false));
}

#[test]
fn over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.bin", &"x".repeat(600));
    write(dir.path(), "b.bin", &"y".repeat(600));
    let err = pack_dir(dir.path(), 1000).unwrap_err();
    assert!(
        matches!(err, StorageError::TooLarge { limit: 1000 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("1000"), "{err}");
    // Exactly at the limit is fine.
    assert_eq!(pack_dir(dir.path(), 1200).unwrap().uncompressed, 1200);

    let upload = pack_dir(dir.path(), 1200).unwrap();
    let err = repack(upload.open().unwrap(), 1000).unwrap_err();
    assert!(
        matches!(err, StorageError::TooLarge { limit: 1000 }),
        "{err:?}"
    );
    // Past the expansion guard, ignored files included.
    let err = repack(upload.open().unwrap(), 100).unwrap_err();
    assert!(
        matches!(err, StorageError::TooLarge { limit: 400 }),
        "{err:?}"
    );
}

#[test]
fn unsafe_entries_are_refused() {
    use tar::EntryType as T;
    for (entries, named) in [
        (vec![("../evil", T::Regular, "x")], "../evil"),
        (vec![("a/../../evil", T::Regular, "x")], "a/../../evil"),
        (vec![("/etc/passwd", T::Regular, "x")], "/etc/passwd"),
        (vec![("a/link", T::Symlink, "../../etc")], "a/link"),
        (vec![("link", T::Symlink, "/etc/passwd")], "link"),
        (vec![("hard", T::Link, "../outside")], "hard"),
        (
            vec![("src", T::Regular, "x"), ("src/a.py", T::Regular, "y")],
            "src/a.py",
        ),
        (
            vec![("src/", T::Directory, ""), ("src", T::Regular, "y")],
            "src",
        ),
    ] {
        let err = repack(&raw_archive(&entries)[..], LIMIT).unwrap_err();
        match err {
            StorageError::Invalid { reason } => assert!(reason.contains(named), "{reason}"),
            other => panic!("{named}: {other:?}"),
        }
    }
    let err = repack(&b"not a tar.gz"[..], LIMIT).unwrap_err();
    assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
}

#[test]
fn links_inside_and_modes() {
    use tar::EntryType as T;
    let upload = raw_archive(&[
        ("run.sh", T::Regular, "#!/bin/sh\n"),
        ("copy.sh", T::Link, "run.sh"),
        ("sub/up", T::Symlink, "../run.sh"),
    ]);
    let packed = repack(&upload[..], LIMIT).unwrap();
    assert_eq!(packed.files, 2);
    let files = contents(&packed);
    assert_eq!(files["copy.sh"], "#!/bin/sh\n");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "run.sh", "#!/bin/sh\n");
        write(dir.path(), "lib.py", "");
        fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.path().join("lib.py"), fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let packed = pack_dir(dir.path(), LIMIT).unwrap();
        assert_eq!(packed.files, 2, "the symlink is skipped");
        let out = tempfile::tempdir().unwrap();
        extract_to_dir(packed.open().unwrap(), out.path()).unwrap();
        let mode = |name: &str| {
            fs::metadata(out.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("run.sh"), mode("lib.py")), (0o755, 0o644));
    }
}

#[test]
fn long_paths_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}/file.py", ["segment"; 30].join("/"));
    write(dir.path(), &deep, "deep");
    let packed = pack_dir(dir.path(), LIMIT).unwrap();
    assert_eq!(contents(&packed)[&deep], "deep");
    assert_eq!(
        repack(packed.open().unwrap(), LIMIT).unwrap().digest,
        packed.digest
    );
}

#[tokio::test]
async fn snapshots_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let packed = pack_dir(dir.path(), LIMIT).unwrap();
    let storage = Storage::in_memory();
    assert!(storage.put_snapshot(&packed).await.unwrap());
    assert!(!storage.put_snapshot(&packed).await.unwrap());
    let key = Storage::snapshot_key(&packed.digest).unwrap();
    assert_eq!(key, format!("snapshots/{}.tar.gz", packed.digest));
    let stored = storage.get(&key).await.unwrap();
    assert_eq!(stored.len() as u64, packed.size);

    let upper = packed.digest.to_ascii_uppercase();
    assert_eq!(Storage::snapshot_key(&upper).unwrap(), key);
    for bad in ["", "abc", "../../etc/passwd", &"g".repeat(64)] {
        assert!(Storage::snapshot_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn packed_file_is_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let packed = pack_dir(dir.path(), LIMIT).unwrap();
    let path = packed.path.to_path_buf();
    assert!(path.exists());
    drop(packed);
    assert!(!path.exists());
}
