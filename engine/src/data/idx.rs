//! The IDX format of the MNIST files, optionally gzip-compressed.

use super::{DataError, LoadLimits};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes: its dimensions and its data, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Bytes inflated between two checks for a stop.
const INFLATE_CHUNK: u64 = 64 << 20;

/// Reads an IDX file (`.gz` or plain) of unsigned bytes.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    read_idx_within(path, &LoadLimits::none())
}

/// [`read_idx`] within `limits`: the file and what it inflates to count against them.
pub fn read_idx_within(path: &Path, limits: &LoadLimits) -> Result<IdxArray, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > limits.room() {
        return Err(limits.too_large(path, size));
    }
    let raw = std::fs::read(path).map_err(io)?;
    parse_idx_within(&raw, path, limits)
}

/// Parses IDX bytes; gzip is recognised by its magic number.
pub fn parse_idx(raw: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    parse_idx_within(raw, path, &LoadLimits::none())
}

fn parse_idx_within(raw: &[u8], path: &Path, limits: &LoadLimits) -> Result<IdxArray, DataError> {
    let bad = |reason: String| DataError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        // Inflated a chunk at a time, never past the room left: a small file may claim
        // gigabytes.
        let room = limits.room();
        let mut inflate = GzDecoder::new(raw).take(room.saturating_add(1));
        let mut out = Vec::new();
        loop {
            limits.check()?;
            let read = (&mut inflate)
                .take(INFLATE_CHUNK)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("gzip: {e}")))?;
            if read == 0 {
                break;
            }
        }
        if out.len() as u64 > room {
            return Err(limits.too_large(path, (out.len() as u64).saturating_add(1)));
        }
        out
    } else {
        raw.to_vec()
    };
    limits.take(path, bytes.len() as u64)?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic number".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned bytes (0x08)",
            bytes[2]
        )));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad("header is cut short".into()));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let Some(len) = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
        return Err(bad(format!("dimensions {dims:?} are too large")));
    };
    if bytes.len() - header != len {
        return Err(bad(format!(
            "dimensions {dims:?} need {len} bytes of data, found {}",
            bytes.len() - header
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}
