#![cfg(feature = "engine")]

mod common;
#[allow(unused_imports)]
use common::*;
use sluice::data::{fashion_mnist, load_idx_split, mnist_digits, read_idx, DataError};
use sluice::prelude::*;
use std::collections::HashSet;

/// IDX bytes: zero, zero, type 0x08 (u8), rank, big-endian dims, then the data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn embedded_mnist_digits_load() {
    let split = mnist_digits().unwrap();
    assert_eq!(split.train.len(), 8000);
    assert_eq!(split.test.len(), 2000);
    for set in [&split.train, &split.test] {
        assert_eq!(set.features, 784);
        assert_eq!(set.classes, 10);
        assert_eq!(set.inputs.len(), set.len() * 784);
        assert!(set.inputs.iter().all(|&p| (0.0..=1.0).contains(&p)));
        // Real images: mostly background, some full-intensity strokes.
        assert!(set.inputs.contains(&1.0));
        let blank = set.inputs.iter().filter(|&&p| p == 0.0).count();
        assert!(blank > set.inputs.len() / 2);
        let classes: HashSet<u8> = set.labels.iter().copied().collect();
        assert_eq!(classes, (0..10).collect());
        // Every class has a fair share.
        for c in 0..10u8 {
            let n = set.labels.iter().filter(|&&l| l == c).count();
            assert!(n > set.len() / 20, "class {c}: {n}");
        }
    }
    let x = split.test.inputs_tensor();
    assert_eq!((x.dtype(), x.shape()), (DType::F32, &[2000, 784][..]));
    let y = split.test.one_hot_tensor();
    assert_eq!(y.shape(), &[2000, 10]);
    let l = split.test.labels_tensor();
    assert_eq!((l.dtype(), l.shape()), (DType::I64, &[2000][..]));
    let oh = y.to_vec::<f32>().unwrap();
    let labels = l.to_vec::<i64>().unwrap();
    for (r, &c) in labels.iter().enumerate() {
        let row = &oh[r * 10..(r + 1) * 10];
        assert_eq!(row.iter().sum::<f32>(), 1.0);
        assert_eq!(row[c as usize], 1.0);
    }
}

/// A tiny data set whose single feature is the example's index, to track which ones a batch
/// holds.
fn indexed(n: usize) -> Dataset {
    Dataset {
        features: 1,
        classes: 10,
        inputs: (0..n).map(|i| i as f32).collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    }
}

fn ids(batch: &sluice::data::Batch) -> Vec<usize> {
    batch
        .inputs
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as usize)
        .collect()
}

#[test]
fn batches_cover_each_example_once_per_epoch() {
    let data = indexed(50);
    let mut batches = data.batches(10, 7);
    let mut previous: Option<Vec<usize>> = None;
    for epoch in 0..3 {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let b = batches.next().unwrap();
            assert_eq!(b.inputs.shape(), &[10, 1]);
            assert_eq!(b.one_hot.shape(), &[10, 10]);
            assert_eq!(b.labels.shape(), &[10]);
            // Labels and one-hot rows belong to the same examples as the inputs.
            let labels = b.labels.to_vec::<i64>().unwrap();
            let oh = b.one_hot.to_vec::<f32>().unwrap();
            for (k, &id) in ids(&b).iter().enumerate() {
                assert_eq!(labels[k], (id % 10) as i64);
                assert_eq!(oh[k * 10 + id % 10], 1.0);
            }
            seen.extend(ids(&b));
        }
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "epoch {epoch}");
        // Shuffled, and differently each epoch.
        assert_ne!(seen, (0..50).collect::<Vec<_>>());
        if let Some(p) = &previous {
            assert_ne!(p, &seen, "epoch {epoch} repeats the last order");
        }
        previous = Some(seen);
    }
}

#[test]
fn a_short_last_batch_is_dropped() {
    // 23 examples in batches of 5: four batches, three examples left over each epoch.
    let data = indexed(23);
    let mut batches = data.batches(5, 1);
    let mut seen = HashSet::new();
    for _ in 0..4 {
        let b = batches.next().unwrap();
        assert_eq!(b.inputs.shape(), &[5, 1]);
        for id in ids(&b) {
            assert!(seen.insert(id), "example {id} twice in one epoch");
        }
    }
    assert_eq!(seen.len(), 20);
    // The next batch starts a new epoch with full size.
    assert_eq!(batches.next().unwrap().inputs.shape(), &[5, 1]);
}

#[test]
fn batches_are_reproducible_under_a_seed() {
    let split = mnist_digits().unwrap();
    let take = |seed| -> Vec<Vec<i64>> {
        split
            .train
            .batches(32, seed)
            .take(3)
            .map(|b| b.labels.to_vec::<i64>().unwrap())
            .collect()
    };
    assert_eq!(take(5), take(5));
    assert_ne!(take(5), take(6));
    let a = split.train.batches(32, 9).next().unwrap();
    let b = split.train.batches(32, 9).next().unwrap();
    assert_eq!(a.inputs, b.inputs);
    assert_eq!(a.inputs.shape(), &[32, 784]);

    let data = indexed(40);
    let first: Vec<usize> = ids(&data.batches(40, 3).next().unwrap());
    assert_eq!(first, ids(&data.batches(40, 3).next().unwrap()));
    assert_ne!(first, ids(&data.batches(40, 4).next().unwrap()));
}

#[test]
fn batch_size_is_clamped_to_the_data() {
    let data = indexed(4);
    let b = data.batches(100, 0).next().unwrap();
    assert_eq!(b.inputs.shape(), &[4, 1]);
    let b = data.batches(0, 0).next().unwrap();
    assert_eq!(b.inputs.shape(), &[1, 1]);
    let empty = indexed(0);
    assert!(empty.batches(8, 0).next().is_none());
}

#[test]
fn idx_files_are_read_plain_and_gzipped() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-data-idx-ok-")
        .tempdir()
        .expect("a temporary folder");
    let bytes = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let plain = dir.path().join("plain-idx");
    std::fs::write(&plain, &bytes).unwrap();
    let gz = dir.path().join("packed-idx.gz");
    std::fs::write(&gz, gzip(&bytes)).unwrap();
    for path in [&plain, &gz] {
        let a = read_idx(path).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }
}

#[test]
fn corrupt_idx_files_give_errors_naming_the_file() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-data-idx-bad-")
        .tempdir()
        .expect("a temporary folder");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-magic",
            vec![1, 2, 8, 1, 0, 0, 0, 1, 9],
            "bad magic number",
        ),
        ("too-short", vec![0, 0], "bad magic number"),
        (
            "not-bytes",
            idx_bytes(&[1], &[0])
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 2 { 0x0d } else { b })
                .collect(),
            "element type 0x0d",
        ),
        (
            "cut-header",
            vec![0, 0, 8, 3, 0, 0, 0, 2],
            "header is cut short",
        ),
        (
            "cut-data",
            idx_bytes(&[2, 3], &[1, 2, 3]),
            "dimensions [2, 3] need 6 bytes of data, found 3",
        ),
        (
            "extra-data",
            idx_bytes(&[2], &[1, 2, 3]),
            "need 2 bytes of data, found 3",
        ),
        (
            "huge-dims",
            idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1]),
            "are too large",
        ),
        ("bad.gz", vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6], "gzip"),
        (
            "truncated.gz",
            gzip(&idx_bytes(&[100], &[7; 100]))[..20].to_vec(),
            "gzip",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{name}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{name}: {text}");
        assert!(text.contains("not an IDX file"), "{name}: {text}");
        assert!(text.contains(reason), "{name}: {text}");
    }
    // A file that is not there is an I/O error naming it.
    let missing = dir.path().join("missing.gz");
    let err = read_idx(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("missing.gz"), "{err}");
}

#[test]
fn a_split_with_one_corrupt_file_names_that_file() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-data-split-bad-")
        .tempdir()
        .expect("a temporary folder");
    let write =
        |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), gzip(&bytes)).unwrap();
    write(
        "train-images-idx3-ubyte.gz",
        idx_bytes(&[2, 2, 2], &[0, 255, 0, 255, 10, 20, 30, 40]),
    );
    write("train-labels-idx1-ubyte.gz", idx_bytes(&[2], &[3, 7]));
    write("t10k-images-idx3-ubyte.gz", idx_bytes(&[1, 2, 2], &[1, 2]));
    write("t10k-labels-idx1-ubyte.gz", idx_bytes(&[1], &[0]));
    let err = load_idx_split(dir.path()).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");

    // Fixed, it loads; images and labels that disagree in count are an error.
    write(
        "t10k-images-idx3-ubyte.gz",
        idx_bytes(&[1, 2, 2], &[1, 2, 3, 4]),
    );
    let split = load_idx_split(dir.path()).unwrap();
    assert_eq!((split.train.len(), split.train.features), (2, 4));
    assert_eq!(split.train.inputs[1], 1.0);
    assert_eq!(split.train.labels, vec![3, 7]);
    write("t10k-labels-idx1-ubyte.gz", idx_bytes(&[2], &[0, 1]));
    let err = load_idx_split(dir.path()).unwrap_err().to_string();
    assert!(err.contains("test set"), "{err}");
}

#[test]
fn fashion_mnist_missing_names_the_debian_package() {
    let dir = tempfile::Builder::new()
        .prefix("sluice-data-fashion-empty-")
        .tempdir()
        .expect("a temporary folder");
    let err = fashion_mnist(Some(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::FashionMissing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("dataset-fashion-mnist"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(text.contains("train-images-idx3-ubyte.gz"), "{text}");
    assert!(text.contains("t10k-labels-idx1-ubyte.gz"), "{text}");
}

#[test]
fn fashion_mnist_from_the_debian_package_when_installed() {
    if fashion_mnist_dir().is_none() {
        return;
    }
    let split = fashion_mnist(None).unwrap();
    assert_eq!(split.train.len(), 60_000);
    assert_eq!(split.test.len(), 10_000);
    assert_eq!(split.train.features, 784);
    assert_eq!(split.train.classes, 10);
    assert!(split.test.inputs.iter().all(|&p| (0.0..=1.0).contains(&p)));
    // Fashion-MNIST is balanced: 6000 of each class in training, 1000 in test.
    for c in 0..10u8 {
        assert_eq!(split.train.labels.iter().filter(|&&l| l == c).count(), 6000);
        assert_eq!(split.test.labels.iter().filter(|&&l| l == c).count(), 1000);
    }
}

#[test]
fn data_sources_are_named_like_the_engine_service_names_them() {
    use sluice::data::DataSource;
    let digits: DataSource = "mnist-digits".parse().unwrap();
    assert_eq!(digits.load().unwrap().train.len(), 8000);
    assert_eq!(
        "idx:/some/dir".parse::<DataSource>().unwrap(),
        DataSource::Idx("/some/dir".into())
    );
    assert_eq!(
        "fashion-mnist".parse::<DataSource>().unwrap(),
        DataSource::FashionMnist(None)
    );
    let err = "cifar".parse::<DataSource>().unwrap_err().to_string();
    assert!(err.contains("unknown data set 'cifar'"), "{err}");
}
