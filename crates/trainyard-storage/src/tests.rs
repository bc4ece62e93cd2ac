use super::*;
use bytes::Bytes;
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::io::Read;

/// Every backend the tests run against; the folder lives as long as the tuple.
fn backends() -> Vec<(Storage, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let local = Storage::local(&dir.path().join("store")).unwrap();
    vec![(local, Some(dir)), (Storage::in_memory(), None)]
}

fn keys(objects: &[StoredObject]) -> Vec<&str> {
    objects.iter().map(|object| object.key.as_str()).collect()
}

#[tokio::test]
async fn round_trip() {
    for (storage, _dir) in backends() {
        storage
            .put("runs/r1/logs/out.txt", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        storage
            .put("runs/r1/outputs/model.bin", Bytes::from_static(b"weights"))
            .await
            .unwrap();
        storage
            .put("runs/r10/other.txt", Bytes::from_static(b"x"))
            .await
            .unwrap();

        assert_eq!(
            &storage.get("runs/r1/logs/out.txt").await.unwrap()[..],
            b"hello"
        );
        assert!(storage.exists("runs/r1/outputs/model.bin").await.unwrap());
        assert!(!storage.exists("runs/r1/missing").await.unwrap());

        // A folder, not a string prefix: runs/r10 is not under runs/r1.
        let listed = storage.list("runs/r1").await.unwrap();
        assert_eq!(
            keys(&listed),
            ["logs/out.txt", "outputs/model.bin"],
            "{storage:?}"
        );
        assert_eq!(listed[1].size, 7);
        assert_eq!(keys(&storage.list("runs/r1/").await.unwrap()).len(), 2);
        assert_eq!(storage.list("").await.unwrap().len(), 3);
        assert!(storage.list("nothing/here").await.unwrap().is_empty());
        assert_eq!(storage.head("runs/r10/other.txt").await.unwrap().size, 1);

        storage.delete("runs/r1/logs/out.txt").await.unwrap();
        storage.delete("runs/r1/logs/out.txt").await.unwrap();
        assert!(!storage.exists("runs/r1/logs/out.txt").await.unwrap());
        match storage.get("runs/r1/logs/out.txt").await {
            Err(StorageError::NotFound { key }) => assert_eq!(key, "runs/r1/logs/out.txt"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            storage.get_stream("runs/nope").await,
            Err(StorageError::NotFound { .. })
        ));

        storage
            .copy("runs/r10/other.txt", "runs/r11/copy.txt")
            .await
            .unwrap();
        assert_eq!(&storage.get("runs/r11/copy.txt").await.unwrap()[..], b"x");
        assert_eq!(storage.delete_prefix("runs").await.unwrap(), 3);
        assert!(storage.list("").await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn odd_names_round_trip() {
    for (storage, _dir) in backends() {
        let names = ["ckpt#100", "a%b c[1].txt", "ünïcode ✓.txt", "x?y*z"];
        for name in names {
            storage
                .put(&format!("f/{name}"), Bytes::from(name))
                .await
                .unwrap();
        }
        let listed = storage.list("f").await.unwrap();
        let mut expected = names.to_vec();
        expected.sort();
        assert_eq!(keys(&listed), expected, "{storage:?}");
        for name in names {
            assert_eq!(
                storage.get(&format!("f/{name}")).await.unwrap(),
                name.as_bytes()
            );
        }
    }
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let storage = Storage::in_memory();
    for key in [
        "",
        "../x",
        "a/../b",
        "a/./b",
        "/abs",
        "a//b",
        "a/",
        "..",
        "tab\there",
    ] {
        let err = storage.put(key, Bytes::new()).await.unwrap_err();
        assert!(
            matches!(err, StorageError::Invalid { .. }),
            "{key:?}: {err:?}"
        );
        assert!(
            matches!(storage.get(key).await, Err(StorageError::Invalid { .. })),
            "{key:?}"
        );
    }
    assert!(matches!(
        storage.list("../up").await,
        Err(StorageError::Invalid { .. })
    ));
}

#[tokio::test]
async fn big_files_stream_both_ways() {
    // 20 MiB: past object_store's 10 MiB buffer, so a multipart upload.
    let content: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.bin");
    std::fs::write(&source, &content).unwrap();
    for (storage, _dir) in backends() {
        let written = storage.put_file("big/file.bin", &source).await.unwrap();
        assert_eq!(written, content.len() as u64);
        assert_eq!(storage.get("big/file.bin").await.unwrap(), &content[..]);

        let chunks: Vec<Bytes> = storage
            .get_stream("big/file.bin")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(chunks.concat(), content);

        let target = dir.path().join("back.bin");
        storage.get_file("big/file.bin", &target).await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(
            storage.list("big").await.unwrap()[0].size,
            content.len() as u64
        );
    }
}

/// An uncompressed tar shaped like Docker's archive of `/outputs`.
fn docker_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        tar.append_data(&mut header, path, data).unwrap();
    };
    add("outputs/", tar::EntryType::Directory, b"", None);
    add(
        "outputs/model.bin",
        tar::EntryType::Regular,
        b"weights",
        None,
    );
    add(
        "outputs/sub/metrics.json",
        tar::EntryType::Regular,
        b"{}",
        None,
    );
    add(
        "outputs/latest",
        tar::EntryType::Symlink,
        b"",
        Some("/etc/passwd"),
    );
    add(
        "outputs/copy.bin",
        tar::EntryType::Link,
        b"",
        Some("outputs/model.bin"),
    );
    tar.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn unpack_into_strips_the_folder_name() {
    for (storage, _dir) in backends() {
        storage
            .put("runs/r1/outputs/old.txt", Bytes::from_static(b"old"))
            .await
            .unwrap();
        let stored = unpack_into(
            &storage,
            "runs/r1/outputs",
            std::io::Cursor::new(docker_archive()),
        )
        .await
        .unwrap();
        assert_eq!(keys(&stored), ["copy.bin", "model.bin", "sub/metrics.json"]);
        assert_eq!(stored[0].size, 7);
        let copy = storage.get("runs/r1/outputs/copy.bin").await.unwrap();
        assert_eq!(&copy[..], b"weights");
        assert!(!storage.exists("runs/r1/outputs/latest").await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unpack_into_refuses_escaping_entries() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..15].copy_from_slice(b"outputs/../evil");
    header.set_size(1);
    header.set_cksum();
    tar.append(&header, &b"x"[..]).unwrap();
    let storage = Storage::in_memory();
    let err = unpack_into(
        &storage,
        "runs/r1",
        std::io::Cursor::new(tar.into_inner().unwrap()),
    )
    .await
    .unwrap_err();
    match err {
        StorageError::Invalid { reason } => assert!(reason.contains("outputs/../evil"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_round_trips() {
    for (storage, _dir) in backends() {
        let files = [
            ("logs/stdout.log", "line 1\nline 2\n"),
            ("outputs/model.bin", "weights"),
            ("outputs/deep/a/b/c.txt", "c"),
        ];
        for (key, content) in files {
            storage
                .put(&format!("runs/r1/{key}"), Bytes::from(content))
                .await
                .unwrap();
        }
        storage
            .put("runs/r2/other.txt", Bytes::from_static(b"no"))
            .await
            .unwrap();

        let file = archive(&storage, "runs/r1").await.unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file.reopen().unwrap()));
        let mut found = BTreeMap::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert!(entry.header().mtime().unwrap() > 0);
            let path = entry.path().unwrap().to_str().unwrap().to_owned();
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            found.insert(path, content);
        }
        let expected: BTreeMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
}
