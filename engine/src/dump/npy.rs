//! NumPy's `.npy` format, version 1.0: a magic string, a header that is a Python dict literal
//! (`descr`, `fortran_order`, `shape`) padded to a multiple of 64 bytes, then the elements in
//! C order. `numpy.load` reads what this writes; `read_npy` reads those files back (and other
//! little-endian, C-order files of the engine's dtypes).

use crate::service::wire::{checked_shape, decode_elements, encode_elements};
use crate::tensor::{Buffer, DType, Tensor};
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Elements written per piece: the file is written without a copy of the whole tensor.
const PIECE_ELEMENTS: usize = 1 << 16;

/// NumPy's name of a dtype's little-endian layout.
fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::Bool => "|b1",
    }
}

fn dtype_of(descr: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| self::descr(d) == descr)
}

/// The header dict, padded with spaces and a newline so the data starts 64-byte aligned.
fn header(t: &Tensor) -> Vec<u8> {
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    // Version 1 has a 2-byte header length: 64 Ki is past any rank the engine makes.
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(unpadded + padding);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let len = (dict.len() + padding + 1) as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

/// Writes `t` to `out` as a `.npy` file.
pub fn write_npy(t: &Tensor, out: &mut impl Write) -> std::io::Result<()> {
    let header = header(t);
    if header.len() > usize::from(u16::MAX) {
        return Err(std::io::Error::other(format!(
            "rank {} is too high for .npy 1.0",
            t.rank()
        )));
    }
    out.write_all(&header)?;
    let mut piece = Vec::with_capacity(PIECE_ELEMENTS.min(t.len()) * t.dtype().size());
    for start in (0..t.len()).step_by(PIECE_ELEMENTS) {
        piece.clear();
        encode_elements(
            t.buffer(),
            start,
            (start + PIECE_ELEMENTS).min(t.len()),
            &mut piece,
        );
        out.write_all(&piece)?;
    }
    Ok(())
}

/// Writes `t` to the file at `path`.
pub fn save_npy(t: &Tensor, path: &Path) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_npy(t, &mut file)?;
    file.flush()
}

/// Reads a `.npy` file: version 1 or 2 headers, little-endian C-order data of the engine's
/// dtypes. The shape is checked against the one-tensor limit before anything is allocated.
pub fn read_npy(path: &Path) -> Result<Tensor, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let file_bytes = file.metadata().map_err(|e| e.to_string())?.len();
    let mut file = std::io::BufReader::new(file);
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic).map_err(|e| e.to_string())?;
    if &magic[..6] != MAGIC {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let header_len = match magic[6] {
        1 => {
            let mut len = [0u8; 2];
            file.read_exact(&mut len).map_err(|e| e.to_string())?;
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            file.read_exact(&mut len).map_err(|e| e.to_string())?;
            usize::try_from(u32::from_le_bytes(len)).map_err(|e| e.to_string())?
        }
        v => return Err(format!(".npy version {v} is not one this reader knows")),
    };
    if header_len > 1 << 20 {
        return Err(format!("a header of {header_len} bytes"));
    }
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let header = String::from_utf8(header).map_err(|_| "the header is not text")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = (field("descr").and_then(|v| v.strip_prefix('\'')))
        .and_then(|v| v.split('\'').next())
        .ok_or("the header has no descr")?;
    let dtype = dtype_of(descr).ok_or_else(|| format!("dtype '{descr}' is not one Sluice has"))?;
    if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err("Fortran-order data is not read".into());
    }
    let shape = (field("shape").and_then(|v| v.strip_prefix('(')))
        .and_then(|v| v.split(')').next())
        .ok_or("the header has no shape")?;
    let dims = (shape.split(',').map(str::trim).filter(|d| !d.is_empty()))
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| format!("shape dimension '{d}'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (shape, bytes) = checked_shape(&dims, dtype, "shape").map_err(|e| e.to_string())?;
    // Nothing is reserved for data the file does not hold.
    if bytes as u64 > file_bytes {
        return Err(format!(
            "the shape needs {bytes} bytes; the file has {file_bytes}"
        ));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(bytes).map_err(|e| e.to_string())?;
    file.take(bytes as u64)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if data.len() != bytes {
        return Err(format!(
            "{} bytes of data where {bytes} were due",
            data.len()
        ));
    }
    let mut buffer = Buffer::zeros(dtype, 0);
    decode_elements(&mut buffer, &data, bytes / dtype.size())?;
    Tensor::from_buffer(&shape, buffer).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_padded_to_64_bytes_and_name_the_layout() {
        let t = Tensor::new(&[2, 3], vec![1.0f32; 6]).expect("tensor");
        let h = header(&t);
        assert_eq!(h.len() % 64, 0);
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(text.ends_with('\n'));
        let scalar = String::from_utf8_lossy(&header(&Tensor::scalar(1i64))[10..]).to_string();
        assert!(scalar.contains("'shape': ()"), "{scalar}");
        let vector =
            String::from_utf8_lossy(&header(&Tensor::from_vec(vec![true]))[10..]).to_string();
        assert!(
            vector.contains("'descr': '|b1'") && vector.contains("(1,)"),
            "{vector}"
        );
    }

    #[test]
    fn every_dtype_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("sluice-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let tensors = [
            Tensor::new(&[2, 2], vec![1.5f32, -2.0, f32::NAN, 4.0]).expect("f32"),
            Tensor::new(&[3], vec![1.0f64, 2.0, 3.0]).expect("f64"),
            Tensor::scalar(7i32),
            Tensor::new(&[1, 2], vec![i64::MIN, i64::MAX]).expect("i64"),
            Tensor::new(&[0, 4], Vec::<u8>::new()).expect("u8"),
            Tensor::from_vec(vec![true, false]),
        ];
        for (i, t) in tensors.iter().enumerate() {
            let path = dir.join(format!("{i}.npy"));
            save_npy(t, &path).expect("save");
            let back = read_npy(&path).expect("read");
            assert_eq!((back.dtype(), back.shape()), (t.dtype(), t.shape()));
            assert_eq!(back.buffer().len(), t.buffer().len());
            for k in 0..t.len() {
                let (a, b) = (back.get_f64(k), t.get_f64(k));
                assert!(a == b || (a.is_nan() && b.is_nan()), "{i}: {a} != {b}");
            }
        }
        std::fs::write(
            dir.join("bad.npy"),
            b"\x93NUMPY\x01\x00\x10\x00{'descr': '<c8'}",
        )
        .expect("w");
        let err = read_npy(&dir.join("bad.npy")).unwrap_err();
        assert!(err.contains("'<c8'"), "{err}");
        // A shape the file cannot hold is refused before anything is reserved for it.
        let mut huge = header(&Tensor::new(&[1000, 1000], vec![0u8; 1_000_000]).expect("u8"));
        huge.extend_from_slice(&[0; 16]);
        std::fs::write(dir.join("short.npy"), &huge).expect("w");
        let err = read_npy(&dir.join("short.npy")).unwrap_err();
        assert!(err.contains("1000000 bytes"), "{err}");
        std::fs::write(dir.join("cut.npy"), &huge[..20]).expect("w");
        assert!(read_npy(&dir.join("cut.npy")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
