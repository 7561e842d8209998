//! TFRecord framing, the container of TensorFlow's event files: each record is
//! `u64 length (little-endian) | u32 masked CRC-32C of the length | data | u32 masked CRC-32C
//! of the data`. The CRC is masked (rotated and offset) because a CRC of data that holds CRCs
//! is weak; TensorFlow defines the mask and readers check both sums.

use crc::{Crc, CRC_32_ISCSI};

/// CRC-32C (Castagnoli), the checksum TFRecord uses (crc32fast's CRC-32 is another one).
const CASTAGNOLI: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The bytes a record adds around its data.
pub const FRAMING_BYTES: usize = 16;

/// TensorFlow's masked CRC-32C of `data`.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = CASTAGNOLI.checksum(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one record holding `data` to `out`.
pub fn append_record(out: &mut Vec<u8>, data: &[u8]) {
    let length = (data.len() as u64).to_le_bytes();
    out.reserve(data.len() + FRAMING_BYTES);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Why a file's records could not all be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("record {index} at byte {offset}: the length's checksum does not match")]
    LengthChecksum { index: usize, offset: usize },
    #[error("record {index} at byte {offset}: the data's checksum does not match")]
    DataChecksum { index: usize, offset: usize },
}

/// The records in `bytes`, in order. A record cut short at the end (a writer stopped
/// mid-write) ends the list, as TensorBoard's reader treats it; a checksum that does not
/// match is an error.
pub fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>, RecordError> {
    let mut records = Vec::new();
    let mut offset = 0;
    loop {
        let rest = &bytes[offset..];
        let Some((header, after)) = rest.split_first_chunk::<12>() else {
            return Ok(records);
        };
        let (length, length_crc) = header.split_at(8);
        if masked_crc(length).to_le_bytes() != length_crc {
            let index = records.len();
            return Err(RecordError::LengthChecksum { index, offset });
        }
        let mut length_bytes = [0u8; 8];
        length_bytes.copy_from_slice(length);
        let length = u64::from_le_bytes(length_bytes);
        let Some(total) = usize::try_from(length).ok().and_then(|n| n.checked_add(4)) else {
            return Ok(records);
        };
        if after.len() < total {
            return Ok(records);
        }
        let (data, crc) = after[..total].split_at(total - 4);
        if masked_crc(data).to_le_bytes() != crc {
            let index = records.len();
            return Err(RecordError::DataChecksum { index, offset });
        }
        records.push(data);
        offset += 12 + total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_tensorflow() {
        // CRC-32C's check value, and vectors from TensorFlow's crc32c and record tests.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(CASTAGNOLI.checksum(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(masked_crc(b"\x1a\x11CRC test, one two"), 0x5794_d08a);
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_left_out() {
        let mut file = Vec::new();
        append_record(&mut file, b"first");
        append_record(&mut file, b"");
        append_record(&mut file, &[7u8; 1000]);
        let whole = read_records(&file).expect("read");
        assert_eq!(whole, vec![&b"first"[..], &b""[..], &[7u8; 1000][..]]);
        for cut in 1..1016 {
            let torn = read_records(&file[..file.len() - cut]).expect("torn tail");
            assert_eq!(torn.len(), 2, "cut {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_is_reported_with_its_record() {
        let mut file = Vec::new();
        append_record(&mut file, b"first");
        append_record(&mut file, b"second");
        let second = 5 + FRAMING_BYTES;
        let mut data = file.clone();
        data[second + 13] ^= 1;
        assert_eq!(
            read_records(&data),
            Err(RecordError::DataChecksum {
                index: 1,
                offset: second
            })
        );
        let mut length = file.clone();
        length[second] ^= 4;
        assert_eq!(
            read_records(&length),
            Err(RecordError::LengthChecksum {
                index: 1,
                offset: second
            })
        );
    }
}
