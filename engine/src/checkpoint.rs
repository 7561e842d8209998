//! Checkpoints: a graph's variables saved to a folder and put back, from any runner
//! (in-process, remote or distributed). Each checkpoint is `ckpt-STEP.safetensors` (the
//! variables by node name, the step in its metadata) with the graph beside it
//! (`ckpt-STEP.graph.pb`, the GraphDef as protobuf). Files are written to a temporary name,
//! synced and then renamed, so a process killed while writing leaves the previous checkpoint
//! whole: a checkpoint is there entirely or not at all.
//!
//! A table split into shards ([`PartitionedVariable`]) is kept whole, under the table's name
//! (and each optimizer slot of its shards as the table's slot, `NAME/accumulator`), so it
//! comes back into any number of shards, split either way.

use crate::error::SessionError;
use crate::graph::{Graph, Output};
use crate::ops::PartitionedVariable;
use crate::runner::Runner;
use crate::service::wire::{decode_elements, encode_elements, graph_def_to_proto};
use crate::tensor::{Buffer, DType, Tensor};
use prost::Message;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a checkpoint's metadata says it is.
const FORMAT: &str = "sluice-checkpoint-1";
const PREFIX: &str = "ckpt-";
const VARIABLES: &str = ".safetensors";
const GRAPH: &str = ".graph.pb";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a Sluice checkpoint: {message}")]
    Format { path: PathBuf, message: String },
    #[error("variable '{name}' cannot be saved: {message}")]
    Unsaveable { name: String, message: String },
    #[error(transparent)]
    Session(#[from] SessionError),
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// A checkpoint on disk: its step and its variables' file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub step: u64,
    pub path: PathBuf,
}

/// What [`restore`] put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub step: u64,
    /// Variables given their saved values.
    pub restored: usize,
    /// The graph's variables the checkpoint does not hold (they keep their values).
    pub missing: Vec<String>,
    /// Saved variables the graph no longer has (ignored).
    pub unknown: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn st_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

/// The tensor's bytes as safetensors stores them (little-endian).
fn le_bytes(t: &Tensor) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len() * t.dtype().size());
    encode_elements(t.buffer(), 0, t.len(), &mut out);
    out
}

fn from_view(view: &TensorView<'_>) -> std::result::Result<Tensor, String> {
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I32 => DType::I32,
        Dtype::I64 => DType::I64,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        other => return Err(format!("dtype {other:?} is not one Sluice has")),
    };
    let count = view.shape().iter().product();
    let mut buffer = Buffer::zeros(dtype, 0);
    decode_elements(&mut buffer, view.data(), count)?;
    Tensor::from_buffer(view.shape(), buffer).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn file_name(step: u64, suffix: &str) -> String {
    format!("{PREFIX}{step:012}{suffix}")
}

/// Shard variables a checkpoint keeps as one tensor: `table`'s shards, or the same slot of
/// each of them, kept as `name`.
struct Whole {
    name: String,
    /// The table's layout with these variables as its shards.
    layout: PartitionedVariable,
}

/// The groups of `among` to keep whole: for each partitioned table `T` of the graph, and
/// each scope `A` and suffix `S` that every shard has (an optimizer slot's
/// `Adagrad/T/part_i/accumulator`), the variables `A T/part_i S` as `A T S`. A variable goes
/// to the table whose shard its name holds longest (`x/emb/part_0` is table `x/emb`'s, not a
/// scoped copy of `emb`'s).
fn wholes(graph: &Graph, among: &[Output]) -> Vec<Whole> {
    let tables = graph.partitioned_variables();
    let shard_names: Vec<Vec<String>> = (tables.iter())
        .map(|t| t.shards.iter().map(|s| s.name()).collect())
        .collect();
    type Key = (usize, String, String);
    let mut groups: std::collections::BTreeMap<Key, Vec<Option<Output>>> = Default::default();
    for &var in among {
        let name = var.name();
        let mut best: Option<(usize, usize, usize, usize)> = None;
        for (t, shards) in shard_names.iter().enumerate() {
            for (i, shard) in shards.iter().enumerate() {
                for (at, _) in name.match_indices(shard.as_str()) {
                    let (scope, rest) = (&name[..at], &name[at + shard.len()..]);
                    let fits = (scope.is_empty() || scope.ends_with('/'))
                        && (rest.is_empty() || rest.starts_with('/'));
                    if fits && best.is_none_or(|b| shard.len() > b.2) {
                        best = Some((t, i, shard.len(), at));
                    }
                }
            }
        }
        if let Some((t, i, len, at)) = best {
            let key = (t, name[..at].to_string(), name[at + len..].to_string());
            let parts = groups
                .entry(key)
                .or_insert_with(|| vec![None; tables[t].shards.len()]);
            parts[i] = Some(var);
        }
    }
    (groups.into_iter())
        .filter_map(|((t, scope, suffix), parts)| {
            let table = &tables[t];
            Some(Whole {
                name: format!("{scope}{}{suffix}", table.name),
                layout: PartitionedVariable {
                    shards: parts.into_iter().collect::<Option<Vec<_>>>()?,
                    ..table.clone()
                },
            })
        })
        .collect()
}

/// Saves every initialized variable of `graph`, as `runner` holds it, as the checkpoint of
/// `step` in `dir` (made if missing), then keeps only the newest `keep` checkpoints there
/// (0: all).
pub fn save(
    runner: &dyn Runner,
    graph: &Graph,
    dir: &Path,
    step: u64,
    keep: usize,
) -> Result<Checkpoint> {
    save_variables(runner, graph, &graph.variables(), dir, step, keep)
}

/// [`save`] for some of the graph's variables only (a data-parallel job leaves out its
/// gradient buffers).
pub fn save_variables(
    runner: &dyn Runner,
    graph: &Graph,
    variables: &[crate::graph::Output],
    dir: &Path,
    step: u64,
    keep: usize,
) -> Result<Checkpoint> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut values = Vec::new();
    // Tables whole where every shard has a value that fits the table (f32 rows); shards
    // one by one otherwise (a data-parallel job's row buffers, a shard not yet set).
    let mut grouped: std::collections::HashSet<usize> = Default::default();
    for whole in wholes(graph, variables) {
        let mut parts = Vec::with_capacity(whole.layout.shards.len());
        for &shard in &whole.layout.shards {
            parts.extend(runner.variable(shard)?);
        }
        let value = (parts.len() == whole.layout.shards.len())
            .then(|| whole.layout.assemble(&parts).ok())
            .flatten();
        if let Some(value) = value {
            grouped.extend(whole.layout.shards.iter().map(|s| s.node()));
            values.push((whole.name, value));
        }
    }
    for &var in variables.iter().filter(|v| !grouped.contains(&v.node())) {
        if let Some(value) = runner.variable(var)? {
            values.push((var.name(), value));
        }
    }
    let bytes: Vec<(String, Tensor, Vec<u8>)> = values
        .into_iter()
        .map(|(name, t)| {
            let b = le_bytes(&t);
            (name, t, b)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, t, b)| {
            TensorView::new(st_dtype(t.dtype()), t.shape().to_vec(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| CheckpointError::Unsaveable {
                    name: name.clone(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), step.to_string()),
        ("graph_nodes".to_string(), graph.len().to_string()),
    ]);
    let path = dir.join(file_name(step, VARIABLES));
    let serialized =
        safetensors::serialize(views, Some(metadata)).map_err(|e| CheckpointError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
    // The graph first: a checkpoint counts once its variables' file is there.
    let graph_bytes = graph_def_to_proto(&graph.to_graph_def(0)).encode_to_vec();
    write_atomically(&dir.join(file_name(step, GRAPH)), &graph_bytes)?;
    write_atomically(&path, &serialized)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    if keep > 0 {
        let all = list(dir)?;
        for old in all.iter().take(all.len().saturating_sub(keep)) {
            let _ = std::fs::remove_file(&old.path);
            let _ = std::fs::remove_file(dir.join(file_name(old.step, GRAPH)));
        }
    }
    Ok(Checkpoint { step, path })
}

/// The checkpoints in `dir`, oldest first (none when the folder does not exist).
pub fn list(dir: &Path) -> Result<Vec<Checkpoint>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut found: Vec<Checkpoint> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name
                .strip_prefix(PREFIX)?
                .strip_suffix(VARIABLES)?
                .parse()
                .ok()?;
            Some(Checkpoint {
                step,
                path: e.path(),
            })
        })
        .collect();
    found.sort_by_key(|c| c.step);
    Ok(found)
}

/// The newest checkpoint in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<Checkpoint>> {
    Ok(list(dir)?.pop())
}

/// Gives the variables of `graph` the values `checkpoint` holds for them (by node name),
/// through `runner`; dtypes and shapes must match the variables'.
pub fn restore(runner: &mut dyn Runner, graph: &Graph, checkpoint: &Path) -> Result<Restored> {
    let bytes = std::fs::read(checkpoint).map_err(io(checkpoint))?;
    let format_error = |message: String| CheckpointError::Format {
        path: checkpoint.to_path_buf(),
        message,
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| format_error(e.to_string()))?;
    let info = meta.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(format_error(format!("its metadata does not say {FORMAT}")));
    }
    let step = (info.get("step").and_then(|s| s.parse().ok()))
        .ok_or_else(|| format_error("no step in its metadata".into()))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format_error(e.to_string()))?;
    let mut restored = Restored {
        step,
        restored: 0,
        missing: Vec::new(),
        unknown: Vec::new(),
    };
    let all = graph.variables();
    let variables: HashMap<String, crate::graph::Output> =
        all.iter().map(|&v| (v.name(), v)).collect();
    let mut set: std::collections::HashSet<String> = Default::default();
    let mut used: std::collections::HashSet<String> = Default::default();
    // Tables kept whole, split into this graph's shards.
    for whole in wholes(graph, &all) {
        let Ok(view) = file.tensor(&whole.name) else {
            continue;
        };
        let name = &whole.name;
        let value = from_view(&view).map_err(|m| format_error(format!("{name}: {m}")))?;
        let parts =
            (whole.layout.split(&value)).map_err(|m| format_error(format!("{name}: {m}")))?;
        for (&shard, part) in whole.layout.shards.iter().zip(parts) {
            runner.set_variable(shard, part)?;
            set.insert(shard.name());
            restored.restored += 1;
        }
        used.insert(whole.name);
    }
    for (name, view) in file.tensors() {
        if used.contains(&name) {
            continue;
        }
        let Some(&var) = variables.get(&name).filter(|_| !set.contains(&name)) else {
            restored.unknown.push(name);
            continue;
        };
        let value = from_view(&view).map_err(|m| format_error(format!("{name}: {m}")))?;
        runner.set_variable(var, value)?;
        set.insert(name);
        restored.restored += 1;
    }
    restored.missing = (variables.keys())
        .filter(|n| !set.contains(n.as_str()))
        .cloned()
        .collect();
    restored.missing.sort();
    restored.unknown.sort();
    Ok(restored)
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;
    use crate::prelude::*;

    /// A tiny model with a trainable variable and the optimizer's i64 step counter.
    fn model() -> (Graph, Output, Output) {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[-1, 3]);
        let w = g.variable("W", &[3, 2], Initializer::GlorotUniform);
        let loss = reduce_sum(square(matmul(x, w)));
        let train = GradientDescent::new(0.1).minimize(loss).unwrap();
        (g, w, train)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn variables_and_step_come_back_in_a_new_session() {
        let dir = temp_dir("round-trip");
        let (g, w, train) = model();
        let mut trained = Session::new(&g);
        trained.init_variables().unwrap();
        let x = g.get("x").unwrap();
        let batch = Tensor::new(&[1, 3], vec![1.0f32, 2.0, 3.0]).unwrap();
        for _ in 0..3 {
            trained.run(&[train], &[(x, batch.clone())]).unwrap();
        }
        let saved = save(&trained, &g, &dir, 3, 0).unwrap();
        assert_eq!(saved.step, 3);
        assert!(dir.join("ckpt-000000000003.graph.pb").is_file());

        let mut fresh = Session::new(&g);
        fresh.init_variables().unwrap();
        assert_ne!(fresh.variable(w).unwrap(), trained.variable(w).unwrap());
        let back = restore(&mut fresh, &g, &latest(&dir).unwrap().unwrap().path).unwrap();
        assert_eq!(back.step, 3);
        assert_eq!(back.restored, g.variables().len());
        assert!(
            back.missing.is_empty() && back.unknown.is_empty(),
            "{back:?}"
        );
        for var in g.variables() {
            assert_eq!(fresh.variable(var).unwrap(), trained.variable(var).unwrap());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_newest_are_kept_and_a_torn_write_is_not_a_checkpoint() {
        let dir = temp_dir("keep");
        let (g, _, _) = model();
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        for step in 1..=5 {
            save(&sess, &g, &dir, step, 2).unwrap();
        }
        let steps: Vec<u64> = list(&dir).unwrap().iter().map(|c| c.step).collect();
        assert_eq!(steps, [4, 5]);
        assert!(!dir.join("ckpt-000000000001.graph.pb").exists());
        // What a process killed while writing step 6 leaves: half a temporary file.
        std::fs::write(dir.join("ckpt-000000000006.tmp"), b"\x10\x00\x00").unwrap();
        let newest = latest(&dir).unwrap().unwrap();
        assert_eq!(newest.step, 5);
        assert_eq!(restore(&mut sess, &g, &newest.path).unwrap().step, 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_and_mismatched_variables_are_named() {
        let dir = temp_dir("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let (g, _, _) = model();
        let mut sess = Session::new(&g);
        let junk = dir.join("ckpt-000000000001.safetensors");
        std::fs::write(&junk, b"not a checkpoint").unwrap();
        let err = restore(&mut sess, &g, &junk).unwrap_err().to_string();
        assert!(err.contains("ckpt-000000000001.safetensors"), "{err}");

        // A checkpoint of another model whose W has another shape.
        let other = Graph::new();
        let w = other.variable("W", &[4, 4], Initializer::Zeros);
        let mut o = Session::new(&other);
        o.init_variables().unwrap();
        let _ = w;
        let saved = save(&o, &other, &dir, 2, 0).unwrap();
        let err = restore(&mut sess, &g, &saved.path).unwrap_err().to_string();
        assert!(err.contains('W'), "{err}");
        assert!(latest(&temp_dir("missing")).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
