//! The memory budget: the most bytes one tensor whose size comes from outside (a shape in an
//! attribute, a variable, a peer's header, a fed value, an op's output computed from its
//! inputs) may take. A request past it is refused with an error that names the size asked,
//! before any memory is reserved, so a hostile or mistaken shape cannot make the process
//! abort on a failed allocation.

use super::{element_count, DType};
use thiserror::Error;

/// The most bytes one tensor may take in a session or an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    limit: u64,
}

/// A tensor that would take more than its budget allows.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("a {dtype} tensor of shape {shape:?} {}", needs(*.bytes, *.limit))]
pub struct OverBudget {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// `None` where the size overflows a u64.
    pub bytes: Option<u64>,
    pub limit: u64,
}

fn needs(bytes: Option<u64>, limit: u64) -> String {
    match bytes {
        Some(b) => format!(
            "needs {b} bytes, over the memory budget of {limit} bytes (the engine's \
             --max-memory)"
        ),
        None => "has more elements than a tensor can hold".to_string(),
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: u64) -> MemoryBudget {
        MemoryBudget { limit }
    }

    /// No limit beyond what the element count itself allows.
    pub const fn unlimited() -> MemoryBudget {
        MemoryBudget { limit: u64::MAX }
    }

    /// Three quarters of `machine_bytes` (the machine's memory), or 16 GiB where it is not
    /// known (0).
    pub fn share_of(machine_bytes: u64) -> MemoryBudget {
        match machine_bytes {
            0 => MemoryBudget::new(16 << 30),
            m => MemoryBudget::new(m / 4 * 3),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The bytes a `dtype` tensor of `shape` takes, if they fit the budget.
    pub fn check(&self, dtype: DType, shape: &[usize]) -> Result<u64, OverBudget> {
        let bytes = element_count(shape)
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_mul(dtype.size() as u64));
        match bytes {
            Some(b) if b <= self.limit => Ok(b),
            _ => Err(OverBudget {
                dtype,
                shape: shape.to_vec(),
                bytes,
                limit: self.limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_the_budget_or_past_counting_are_refused() {
        let budget = MemoryBudget::new(1 << 20);
        assert_eq!(budget.check(DType::F32, &[256, 1024]), Ok(1 << 20));
        let over = budget.check(DType::F32, &[256, 1025]).unwrap_err();
        assert_eq!(over.bytes, Some(1_049_600));
        assert!(over.to_string().contains("1049600 bytes"), "{over}");
        let wraps = budget.check(DType::F64, &[1 << 40, 1 << 40]).unwrap_err();
        assert_eq!(wraps.bytes, None);
        assert!(MemoryBudget::unlimited()
            .check(DType::U8, &[1 << 62])
            .is_ok());
        assert_eq!(MemoryBudget::share_of(4 << 30).limit(), 3 << 30);
    }
}
